"""Simulated department systems (公安, 市场监管, 民政, 自然资源) with injected, manifested defects.

``simulate(layout, persons, seed, day=0, defect_rate=0.02, pg_dsn=None)`` writes

- 公安 ``persons`` table: ``departments/gongan/population.sqlite`` (or PostgreSQL with ``pg_dsn``)
- 市场监管 ``enterprises`` / ``food_licences``: ``departments/scjg/registry.sqlite``, served by
  ``exchange.departments.scjg_api`` as ``GET /api/v1/enterprises`` and ``/api/v1/food-licences``
- 民政 GBK CSV drops ``departments/minzheng/drops/marriages_YYYYMMDD.csv``
- 自然资源 XLSX drops ``departments/zrzy/drops/property_YYYYMMDD.xlsx``
- the defect manifest ``departments/manifest.json``
"""

from __future__ import annotations

from exchange.departments.errors import SimulationError
from exchange.departments.simulate import simulate
from exchange.departments.state import SimulationSummary
from exchange.departments.timeline import BASE_DATE

__all__ = ["BASE_DATE", "SimulationError", "SimulationSummary", "simulate"]
