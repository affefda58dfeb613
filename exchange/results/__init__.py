"""Back-office results (办结结果) pushed by departments: inbox files and who may issue what.

``POST /api/v1/results`` (:mod:`exchange.api.routes.results`) checks the shape and the
caller's issue grant, then :class:`ResultInbox` writes the records atomically as JSON
lines into the ``hub_results`` source's folder. The ingest DAG of that source (made by
``dags/onewindow_ingest.py`` from ``exchange/sources/registry.toml``) pulls them per
interval, runs the ``licence_records`` quality suite (bad rows quarantined with their
reasons), merges them; the next library build issues the licences.
"""

from exchange.results.grants import IssueGrants
from exchange.results.inbox import RESULTS_SOURCE, ResultInbox

__all__ = ["IssueGrants", "RESULTS_SOURCE", "ResultInbox"]
