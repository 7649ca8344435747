// History with chosen timestamps (days ago), written straight into a stopped server's SQLite file with Debian's
// `sqlite3`, then the server started again on the same data: the room page then shows "Yesterday" and older dates as
// it would for messages that really are that old.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { startServer } from "./server.mjs";

const quote = (text) => `'${String(text).replaceAll("'", "''")}'`;

/** A fresh server whose `room` holds `messages` ({author, body, at} with `at` in ms since the epoch, oldest first). */
export async function serverWithHistory(room, messages) {
  const first = await startServer();
  // Served once before it stops: the server is up with its schema, and the page read the store.
  const page = await fetch(`${first.url}/${room}`);
  if (!page.ok) throw new Error(`room page answered ${page.status}`);
  await first.stop();
  const rows = messages
    .map((m, i) => `(${quote(room)}, ${i + 1}, ${quote(m.author)}, ${quote(m.body)}, NULL, ${Math.round(m.at)})`)
    .join(",\n");
  const last = messages.at(-1);
  const sql = `INSERT INTO messages (room, id, author, body, client_id, sent_at) VALUES ${rows};
INSERT INTO rooms (slug, last_id, last_message_at) VALUES (${quote(room)}, ${messages.length}, ${Math.round(last.at)});`;
  execFileSync("sqlite3", [path.join(first.dataDir, "chat.db"), sql]);
  return startServer({ dataDir: first.dataDir, addr: first.addr });
}
