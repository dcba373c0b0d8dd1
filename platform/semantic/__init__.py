"""The semantic layer: metrics and dimensions defined once (issue: semantic layer)."""
