"""One folder per area (ingest, indicators, model, publication); every definition below is loaded."""
