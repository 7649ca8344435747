//! The product's name, shown in titles and headers (its own module, so every page can use it without importing the
//! router that imports the pages).

/// The product name.
pub const PRODUCT_NAME: &str = "Parley";
