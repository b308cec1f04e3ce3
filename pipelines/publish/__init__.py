"""Publication: the weekly warning lists (immutable snapshots) and the weekly reports, from marts.warnings."""

from pipelines.publish.lists import PublishResult, publish_week
from pipelines.publish.reports import write_reports

__all__ = ["PublishResult", "publish_week", "write_reports"]
