"""The BI tools: the interface every tool implements and its registry (interface.py), and one
folder per tool (superset/, metabase/), each with its tool class and its command group."""

from olist_bi.bi.interface import (
    TOOLS,
    BITool,
    Outcome,
    Provisioned,
    Service,
    after_publish,
    command_groups,
    review_access,
    tool,
    tools,
)

__all__ = ["TOOLS", "BITool", "Outcome", "Provisioned", "Service", "after_publish", "command_groups", "review_access", "tool", "tools"]
