"""The one-command local stack: daemon, carbon-cache, render API, bridge, example app."""
