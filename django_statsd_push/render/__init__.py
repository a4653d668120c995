"""The Graphite-compatible render API over Whisper files. Never imported by the Django side."""
