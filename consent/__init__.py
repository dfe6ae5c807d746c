"""The trust service: who someone is, what they may see, and what they saw."""
