"""The warehouse pipeline: extract, validate, transform, publish (issue: warehouse ETL)."""
