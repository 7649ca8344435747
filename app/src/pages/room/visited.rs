//! "Rooms I'm in": the rooms this browser opened, newest first, each with the newest message id read there, kept in
//! `localStorage` as `slug:id` pairs separated by spaces (`lobby:42 panther-silk-empire:7 new-room:`: room names have
//! neither). Pure (the browser's storage is read and written by the caller), so the rules are tested natively: at
//! most [`MAX_ROOMS`], invalid slugs dropped, a visit moves a room to the top. (Not JSON: a derived deserializer
//! would cost the room page's WASM more than these few lines.)

/// The `localStorage` key.
pub const STORAGE_KEY: &str = "parley:rooms";
/// Rooms remembered; the sidebar watches all but the current one.
pub const MAX_ROOMS: usize = 8;

/// One room this browser opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitedRoom {
    pub slug: String,
    /// Newest message id read in this room.
    pub seen: Option<u64>,
}

/// The rooms, newest visit first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visited(pub Vec<VisitedRoom>);

impl Visited {
    /// Reads what was stored; anything unreadable counts as nothing, invalid room names are dropped.
    pub fn parse(stored: Option<&str>) -> Self {
        let rooms = stored.unwrap_or_default().split_whitespace().filter_map(|pair| {
            let (slug, seen) = pair.split_once(':')?;
            let seen = if seen.is_empty() { None } else { Some(seen.parse().ok()?) };
            Some(VisitedRoom { slug: slug.to_owned(), seen })
        });
        let valid = rooms.filter(|r| protocol::names::validate_room_slug(&r.slug).is_ok());
        let mut visited = Self(Vec::new());
        for room in valid {
            if visited.0.len() < MAX_ROOMS && !visited.0.iter().any(|r| r.slug == room.slug) {
                visited.0.push(room);
            }
        }
        visited
    }

    /// What to store.
    pub fn to_stored(&self) -> String {
        let pairs =
            self.0.iter().map(|r| format!("{}:{}", r.slug, r.seen.map(|id| id.to_string()).unwrap_or_default()));
        pairs.collect::<Vec<_>>().join(" ")
    }

    /// `slug` was opened: it moves to the top (the oldest room falls off past [`MAX_ROOMS`]).
    pub fn visit(&mut self, slug: &str) {
        let room = match self.0.iter().position(|r| r.slug == slug) {
            Some(at) => self.0.remove(at),
            None => VisitedRoom { slug: slug.to_owned(), seen: None },
        };
        self.0.insert(0, room);
        self.0.truncate(MAX_ROOMS);
    }

    /// Messages up to `id` were read in `slug`.
    pub fn saw(&mut self, slug: &str, id: u64) {
        if let Some(room) = self.0.iter_mut().find(|r| r.slug == slug) {
            room.seen = Some(room.seen.map_or(id, |seen| seen.max(id)));
        }
    }

    /// Every room but `current`, newest visit first.
    pub fn others(&self, current: &str) -> Vec<VisitedRoom> {
        self.0.iter().filter(|r| r.slug != current).cloned().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn visits_move_rooms_to_the_top_and_old_ones_fall_off() {
        let mut visited = Visited::default();
        for n in 0..10 {
            visited.visit(&format!("room-{n}"));
        }
        assert_eq!(visited.0.len(), MAX_ROOMS);
        assert_eq!(visited.0[0].slug, "room-9");
        visited.visit("room-5");
        assert_eq!(visited.0[0].slug, "room-5");
        assert_eq!(visited.0.len(), MAX_ROOMS);
        assert_eq!(visited.others("room-5").len(), MAX_ROOMS - 1);
    }

    #[test]
    fn the_seen_id_only_grows_and_survives_storage() {
        let mut visited = Visited::default();
        visited.visit("lobby");
        visited.saw("lobby", 10);
        visited.saw("lobby", 4);
        visited.saw("elsewhere", 99);
        let again = Visited::parse(Some(&visited.to_stored()));
        assert_eq!(again.0, [VisitedRoom { slug: "lobby".into(), seen: Some(10) }]);
    }

    #[test]
    fn junk_in_storage_is_ignored() {
        assert_eq!(Visited::parse(Some("not pairs")), Visited::default());
        assert_eq!(Visited::parse(None), Visited::default());
        let stored = "ok: Not:1 ok:3 <script>:2 fine:x fine:-1 also-ok:12";
        assert_eq!(
            Visited::parse(Some(stored)).0,
            [VisitedRoom { slug: "ok".into(), seen: None }, VisitedRoom { slug: "also-ok".into(), seen: Some(12) }]
        );
    }
}
