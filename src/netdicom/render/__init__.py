"""Rich output only: progress, tables, JSON/CSV writers."""
