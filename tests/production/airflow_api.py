"""Airflow 3's public REST API (v2) as the test drives it: a JWT from the simple auth manager, then /api/v2."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

TERMINAL = {"success", "failed"}


class AirflowAPI:
    def __init__(self, base_url: str, passwords_file: Path, username: str = "admin") -> None:
        self.base_url = base_url.rstrip("/")
        self.passwords_file = passwords_file
        self.username = username
        self._client = httpx.Client(base_url=self.base_url, timeout=30.0)

    def close(self) -> None:
        self._client.close()

    def login(self) -> None:
        """POST /auth/token with the password the simple auth manager generated at api-server start."""
        password = json.loads(self.passwords_file.read_text())[self.username]
        resp = self._client.post("/auth/token", json={"username": self.username, "password": password})
        resp.raise_for_status()
        self._client.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs) -> dict:
        resp = self._client.request(method, f"/api/v2{path}", **kwargs)
        if resp.status_code == 401:  # the token expired: sign in again once
            self.login()
            resp = self._client.request(method, f"/api/v2{path}", **kwargs)
        if resp.is_error:
            raise AssertionError(f"{method} /api/v2{path} -> {resp.status_code}: {resp.text[:2000]}")
        return resp.json()

    def health(self) -> dict:
        return self._client.get("/api/v2/monitor/health").json()

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self._call("GET", "/dags", params={"limit": 100})["dags"]}

    def import_errors(self) -> list[dict]:
        return self._call("GET", "/importErrors")["import_errors"]

    def unpause(self, dag_id: str) -> None:
        body = self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        assert body["is_paused"] is False, body

    def trigger(self, dag_id: str, *, run_id: str, start: str, end: str) -> dict:
        """A manual run for the data interval [start, end) (logical date = its end, as the embedded runner does)."""
        return self._call("POST", f"/dags/{dag_id}/dagRuns", json={
            "dag_run_id": run_id, "logical_date": end, "data_interval_start": start, "data_interval_end": end,
            "run_after": end})

    def run(self, dag_id: str, run_id: str) -> dict:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def runs(self, dag_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "run_after"})["dag_runs"]

    def queued_asset_events(self, dag_id: str) -> list[dict]:
        resp = self._client.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents")
        if resp.status_code == 404:
            return []
        resp.raise_for_status()
        return resp.json()["queued_events"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")["task_instances"]
