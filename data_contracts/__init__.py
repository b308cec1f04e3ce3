"""The interchange standard (../shared/spec/interchange.md) as code: feeds, columns, keys, rules."""
