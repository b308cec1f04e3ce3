"""Publication: the weekly warning lists (immutable snapshots) and the weekly reports, from marts.warnings."""

from pipelines.publish.lists import (
    NATIONAL, PublishResult, newest_list, publish_national, publish_province, publish_week, stale_lists, week_lists,
)
from pipelines.publish.reports import write_national_report, write_province_report, write_reports

__all__ = ["NATIONAL", "PublishResult", "newest_list", "publish_national", "publish_province", "publish_week",
           "stale_lists", "week_lists", "write_national_report", "write_province_report", "write_reports"]
