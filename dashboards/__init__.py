"""The supervision dashboard: scoped warehouse views, rectification notices and cases, public lists."""
