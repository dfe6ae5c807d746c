"""Identification at the scene by face: opt-in enrollment, exact 1:N search, reference
photos (docs/biometrics.md). The incident flow calls :mod:`phr.biometrics.service`."""
