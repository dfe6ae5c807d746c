"""Municipal analytics: population indicators from consented records, aggregates only."""
