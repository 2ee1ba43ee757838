"""The catalog: preparation, splits, subsets and checks of a `Catalog`."""
