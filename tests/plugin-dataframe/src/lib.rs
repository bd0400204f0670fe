//! A `map_partitions` op for the plugin tests: stock workers run it from the
//! plugin `rask plugin build` makes of this crate.

use rask::dataframe::polars::prelude::*;
use rask::dataframe::Partition;

rask::op! {
    /// Adds `fare_per_mile = fare / miles` and keeps the rows where it is
    /// above 2.
    pub fn fare_per_mile(part: Partition) -> Partition {
        let frame = part.0.lazy()
            .with_column((col("fare") / col("miles")).alias("fare_per_mile"))
            .filter(col("fare_per_mile").gt(lit(2.0)))
            .collect()
            .expect("fare and miles are numbers");
        Partition(frame)
    }
}
