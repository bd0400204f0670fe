//! Ops for the plugin tests: a scalar op, an array kernel and an op that
//! panics. Test programs link this crate and call the ops by their handles;
//! stock workers run them from the plugin `rask plugin build` makes of it.

use rask::array::Chunk;

rask::op! {
    /// `x² + 1`.
    pub fn score(x: i64) -> i64 { x * x + 1 }
}

rask::op! {
    /// Every element times three, plus one (a `map_blocks` kernel).
    pub fn triple_plus_one(block: Chunk) -> Chunk {
        Chunk::from(block.cast::<f64>() * 3.0 + 1.0)
    }
}

rask::op! {
    /// Panics with `message`.
    pub fn explode(message: String) -> i64 { panic!("{message}") }
}
