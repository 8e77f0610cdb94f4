"""Files on disk: the archive folder (layout, atomic durable writes), its index and matching."""
