"""The FastAPI peer: what gpurm's users would otherwise build and run.

A faithful Python (FastAPI on uvicorn) version of the gpurm endpoints that
bench/run measures, with the same behaviour where it costs something:

* the same static inventory YAML (nodes, GPUs with count/memory/used memory/
  NVLink group/health), GPU names canonicalised to a model family;
* the same placement logic (filter -> choose GPUs -> score -> best node;
  binpack and spread, NVLink islands, all-or-nothing gang placement, the
  refusal's per-node reasons), kept in memory and updated on every change;
* the same ledger durability: SQLite in WAL mode with synchronous=FULL, the
  same tables, one BEGIN IMMEDIATE ... COMMIT transaction per change, the
  answer sent only after the commit (so after the fsync);
* request counters and a latency histogram on /metrics next to per-GPU
  gauges, fed by an ASGI middleware as gpurm's request observer feeds its own.

It runs as one uvicorn process with uvloop and httptools: the placement state
lives in this process's memory, so more worker processes would each hold a
different view of which GPUs are free (the reason such services run one).
Handlers that write the ledger are plain `def` (FastAPI runs them on its
thread pool; sqlite3 releases the GIL during the fsync), reads are `async`.

Endpoints (base /api/v1/gpu): GET /health, GET /status, GET /nodes, POST /allocate,
DELETE /allocations/{id}; GET /metrics.

Run: python app.py --inventory INV.yaml --data-dir DIR --port 8101
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import random
import re
import sqlite3
import threading
import time
from typing import Optional

import uvicorn
import yaml
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               disable_created_metrics)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from pydantic import BaseModel, ConfigDict, Field

BASE = "/api/v1/gpu"
MILLI_PER_GPU = 1000

# --- GPU model names ---------------------------------------------------------

# (pattern on the upper-cased name, canonical family, vendor, bf16 support).
# The families of the inventories the benchmark generates and the examples.
_FAMILIES = [
    (re.compile(r"H100"), "H100", "nvidia", True),
    (re.compile(r"A100"), "A100", "nvidia", True),
    (re.compile(r"V100"), "V100", "nvidia", False),
    (re.compile(r"(^|[^A-Z0-9])T4($|[^0-9])"), "T4", "nvidia", False),
    (re.compile(r"A6000"), "A6000", "nvidia", True),
    (re.compile(r"A40"), "A40", "nvidia", True),
    (re.compile(r"RTX\s*-?4090"), "RTX4090", "nvidia", True),
    (re.compile(r"RTX\s*-?3090"), "RTX3090", "nvidia", True),
    (re.compile(r"MI250X"), "MI250X", "amd", True),
    (re.compile(r"MAX\s*1550"), "MAX1550", "intel", True),
    (re.compile(r"ASCEND\s*910B"), "ASCEND910B", "huawei", True),
]
_MEMORY_IN_NAME = re.compile(r"(\d+)\s*GB")
DEFAULT_MEMORY_SPECS = {"T4": 16.0, "V100": 32.0, "A100": 80.0, "H100": 80.0,
                        "RTX3090": 24.0, "RTX4090": 24.0, "A6000": 48.0, "A40": 48.0}


def parse_gpu_model(name: str, specs: dict) -> tuple[str, str, bool, Optional[float]]:
    """(canonical, vendor, bf16, memory_gb) of a driver name; canonical "" if unknown."""
    upper = name.upper()
    for pattern, canonical, vendor, bf16 in _FAMILIES:
        if pattern.search(upper):
            in_name = _MEMORY_IN_NAME.search(upper)
            memory = float(in_name.group(1)) if in_name else specs.get(canonical)
            return canonical, vendor, bf16, memory
    return "", "unknown", False, None


def canonical_gpu_type(user_type: str) -> str:
    canonical, _, _, _ = parse_gpu_model(user_type, {})
    return canonical or "".join(c for c in user_type.upper() if c.isalnum())


# --- Inventory and free state -----------------------------------------------

class Gpu:
    __slots__ = ("index", "uuid", "raw_name", "canonical", "vendor", "bf16", "total_mib",
                 "used_mib", "utilization", "memory_utilization", "temperature_c", "power_w",
                 "healthy", "nvlink_group", "exclusively_held", "shared_holders",
                 "shared_reserved_mib")

    def untouched(self) -> bool:
        return not self.exclusively_held and self.shared_holders == 0

    def free_mib(self) -> int:
        if self.exclusively_held:
            return 0
        return max(0, self.total_mib - self.used_mib - self.shared_reserved_mib)

    def type_label(self) -> str:
        return self.canonical or self.raw_name


class Node:
    __slots__ = ("name", "address", "schedulable", "gpus")


def load_inventory(path: str, specs: dict) -> list[Node]:
    with open(path, encoding="utf-8") as f:
        # libyaml's C parser when PyYAML has it (the wheels do): what a user
        # loading a large inventory would reach for.
        document = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    nodes = []
    for raw_node in document["nodes"]:
        node = Node()
        node.name = raw_node["name"]
        node.address = raw_node.get("address", "")
        node.schedulable = raw_node.get("schedulable", True)
        node.gpus = []
        for entry in raw_node.get("gpus", []):
            canonical, vendor, bf16, memory_gb = parse_gpu_model(entry["name"], specs)
            total_mib = entry.get("memory_total_mb")
            if total_mib is None:
                if memory_gb is None:
                    raise ValueError(f"{path}: node {node.name}: memory of {entry['name']} unknown")
                total_mib = int(memory_gb * 1024 + 0.5)
            for _ in range(int(entry.get("count", 1))):
                gpu = Gpu()
                gpu.index = len(node.gpus)
                gpu.uuid = entry.get("uuid") or f"{node.name}-gpu{gpu.index}"
                gpu.raw_name = entry["name"]
                gpu.canonical, gpu.vendor, gpu.bf16 = canonical, vendor, bf16
                gpu.total_mib = int(total_mib)
                gpu.used_mib = int(entry.get("memory_used_mb", 0))
                gpu.utilization = float(entry.get("utilization", 0.0))
                gpu.memory_utilization = float(entry.get("memory_utilization", 0.0))
                gpu.temperature_c = entry.get("temperature_c")
                gpu.power_w = entry.get("power_w")
                gpu.healthy = bool(entry.get("healthy", True))
                gpu.nvlink_group = int(entry.get("nvlink_group", -1))
                gpu.exclusively_held = False
                gpu.shared_holders = 0
                gpu.shared_reserved_mib = 0
                node.gpus.append(gpu)
        nodes.append(node)
    return nodes


# --- Requests ------------------------------------------------------------------

class GpuRequest(BaseModel):
    """The Python API's TrainingGPUConfig plus gpurm's options (docs/api.md)."""
    model_config = ConfigDict(extra="forbid")

    gpu_count: int = Field(1, ge=1, le=4096)
    gpu_type: str = ""
    memory_gb: float = Field(0.0, ge=0, le=1e6, allow_inf_nan=False)
    distributed_training: bool = False
    mixed_precision: bool = False
    gpu_memory_fraction: float = Field(0.9, gt=0, le=1)
    node_name: str = ""
    shared: bool = False
    policy: str = ""
    lease_ttl_seconds: int = Field(0, ge=0)
    owner: str = ""


def mib_from_gb(gb: float) -> int:
    return int(gb * 1024.0 + 0.5)


def type_matches(request: GpuRequest, wanted: str, gpu: Gpu) -> bool:
    if not request.gpu_type:
        return True
    if gpu.canonical:
        return gpu.canonical == wanted
    return canonical_gpu_type(gpu.raw_name) == wanted


# --- Placement (binpack / spread) -------------------------------------------

def group_by_island(node: Node, indexes: list[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i in indexes:
        group = node.gpus[i].nvlink_group
        groups.setdefault(group if group >= 0 else -1 - i, []).append(i)
    return groups


def choose_by_island(node: Node, eligible: list[int], count: int, best_fit: bool) -> list[int]:
    islands = sorted(group_by_island(node, eligible).items())
    members = [m for _, m in islands]

    def key(m):
        fits = len(m) >= count
        if fits and best_fit:
            return (0, len(m))
        return (0 if fits else 1, -len(m))
    members.sort(key=key)
    chosen: list[int] = []
    for m in members:
        for i in m:
            if len(chosen) == count:
                break
            chosen.append(i)
    return sorted(chosen)


def same_island(node: Node, chosen: list[int]) -> bool:
    if len(chosen) <= 1:
        return True
    group = node.gpus[chosen[0]].nvlink_group
    return group >= 0 and all(node.gpus[i].nvlink_group == group for i in chosen)


def largest_untouched_island_after(node: Node, chosen: list[int]) -> int:
    untouched = [i for i, g in enumerate(node.gpus) if g.untouched() and i not in chosen]
    return max((len(m) for m in group_by_island(node, untouched).values()), default=0)


def binpack_choose(request, node, eligible, count):
    if count > 1 and not request.shared:
        return choose_by_island(node, eligible, count, True)
    order = sorted(eligible, key=lambda i: (node.gpus[i].untouched(),
                                            -largest_untouched_island_after(node, [i]),
                                            node.gpus[i].free_mib()))
    return sorted(order[:count])


def binpack_score(node: Node, chosen: list[int]) -> int:
    if not node.gpus:
        return 0
    touched_after = len(chosen) + sum(
        1 for i, g in enumerate(node.gpus) if not g.untouched() and i not in chosen)
    return round(80.0 * touched_after / len(node.gpus)) + (20 if same_island(node, chosen) else 0)


def spread_choose(request, node, eligible, count):
    if count > 1 and not request.shared:
        return choose_by_island(node, eligible, count, False)
    order = sorted(eligible, key=lambda i: -node.gpus[i].free_mib())
    return sorted(order[:count])


def spread_score(node: Node, chosen: list[int]) -> int:
    if not node.gpus:
        return 0
    untouched_after = sum(1 for i, g in enumerate(node.gpus) if g.untouched() and i not in chosen)
    return round(100.0 * untouched_after / len(node.gpus))


POLICIES = {"binpack": (binpack_choose, binpack_score), "spread": (spread_choose, spread_score)}


def filter_node(request: GpuRequest, wanted: str, node: Node, needed: int) -> tuple[list[int], str]:
    """(eligible GPU indexes, why fewer than `needed` are eligible)."""
    if not node.schedulable:
        return [], "node is not schedulable (cordoned or not ready)"
    need_mib = mib_from_gb(request.memory_gb)
    eligible, matching, held, unhealthy, too_small, short = [], 0, 0, 0, 0, 0
    for i, g in enumerate(node.gpus):
        if not type_matches(request, wanted, g):
            continue
        matching += 1
        if g.total_mib < need_mib:
            too_small += 1
        elif not g.healthy:
            unhealthy += 1
        elif g.exclusively_held if request.shared else not g.untouched():
            held += 1
        elif g.free_mib() < need_mib:
            short += 1
        else:
            eligible.append(i)
    if len(eligible) >= needed:
        return eligible, ""
    label = wanted or "GPU"
    if matching == 0:
        return eligible, f"no {label} GPUs"
    details = [f"{n} {what}" for n, what in ((held, "already allocated"), (unhealthy, "unhealthy"),
                                             (too_small, "too small"),
                                             (short, "with not enough free memory")) if n]
    reason = f"{len(eligible)} of {needed} needed {label} GPUs available"
    return eligible, reason + (": " + ", ".join(details) if details else "")


def schedule(request: GpuRequest, nodes: list[Node], default_policy: str):
    """(grants, reasons): grants is None when the request does not fit now."""
    choose, score = POLICIES[request.policy or default_policy]
    wanted = canonical_gpu_type(request.gpu_type) if request.gpu_type else ""
    filtered: list[tuple[list[int], str]] = [([], "")] * len(nodes)
    best = None
    for n, node in enumerate(nodes):
        if request.node_name and node.name != request.node_name:
            continue
        filtered[n] = filter_node(request, wanted, node, request.gpu_count)
        eligible = filtered[n][0]
        if len(eligible) < request.gpu_count:
            continue
        gpus = choose(request, node, eligible, request.gpu_count)
        s = score(node, gpus)
        if best is None or s > best[2]:
            best = (n, gpus, s)
    chosen = [best] if best else []
    if not chosen and request.distributed_training and request.gpu_count > 1 \
            and not request.node_name:
        for node_count in range(2, request.gpu_count + 1):
            if request.gpu_count % node_count:
                continue
            per_node = request.gpu_count // node_count
            candidates = []
            for n, node in enumerate(nodes):
                if len(filtered[n][0]) >= per_node:
                    gpus = choose(request, node, filtered[n][0], per_node)
                    candidates.append((n, gpus, score(node, gpus)))
            if len(candidates) >= node_count:
                candidates.sort(key=lambda c: -c[2])
                chosen = sorted(candidates[:node_count])
                break
    if not chosen:
        reasons = [{"node_name": nodes[n].name, "reason": r}
                   for n, (_, r) in enumerate(filtered) if r]
        return None, reasons
    need_mib = mib_from_gb(request.memory_gb)
    grants = []
    for n, gpus, _ in chosen:
        for i in gpus:
            g = nodes[n].gpus[i]
            grants.append({"node_name": nodes[n].name, "gpu_index": g.index, "gpu_uuid": g.uuid,
                           "memory_mib": need_mib if request.shared else g.free_mib(),
                           "exclusive": not request.shared})
    return grants, []


# --- Ledger ---------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS allocations (
  id TEXT PRIMARY KEY NOT NULL,
  owner TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'released', 'expired')),
  request TEXT NOT NULL CHECK (json_valid(request)),
  created_unix_ms INTEGER NOT NULL,
  ended_unix_ms INTEGER NOT NULL,
  lease_expires_unix_ms INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS allocations_by_owner_key ON allocations (owner, idempotency_key)
  WHERE idempotency_key <> '';
CREATE INDEX IF NOT EXISTS allocations_by_created ON allocations (created_unix_ms, id);
CREATE INDEX IF NOT EXISTS allocations_by_owner_created ON allocations (owner, created_unix_ms, id);
CREATE INDEX IF NOT EXISTS allocations_active ON allocations (id) WHERE state = 'active';
CREATE TABLE IF NOT EXISTS grants (
  allocation_id TEXT NOT NULL REFERENCES allocations (id),
  ordinal INTEGER NOT NULL,
  node_name TEXT NOT NULL,
  gpu_index INTEGER NOT NULL,
  gpu_uuid TEXT NOT NULL,
  memory_mib INTEGER NOT NULL,
  exclusive INTEGER NOT NULL CHECK (exclusive IN (0, 1)),
  PRIMARY KEY (allocation_id, ordinal)
) STRICT, WITHOUT ROWID;
"""


class Ledger:
    """SQLite, WAL, synchronous=FULL, one transaction per change. Callers serialise."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def insert(self, allocation: dict) -> None:
        request = allocation["request"]
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO allocations VALUES (?, ?, 'active', ?, ?, 0, ?, ?)",
                       (allocation["allocation_id"], allocation["owner"], json.dumps(request),
                        allocation["created_unix_ms"], allocation["lease_expires_unix_ms"],
                        allocation["idempotency_key"]))
            db.executemany("INSERT INTO grants VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(allocation["allocation_id"], i, g["node_name"], g["gpu_index"],
                             g["gpu_uuid"], g["memory_mib"], int(g["exclusive"]))
                            for i, g in enumerate(allocation["gpus"])])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def end(self, allocation_id: str, ended_unix_ms: int) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE allocations SET state = 'released', ended_unix_ms = ? "
                       "WHERE id = ? AND state = 'active'", (ended_unix_ms, allocation_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


# --- The service ------------------------------------------------------------------

def iso8601(unix_ms: int) -> str:
    return datetime.datetime.fromtimestamp(unix_ms / 1000, datetime.timezone.utc) \
        .isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error(status: int, code: str, message: str, field: str = "", **extra) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    body.update(extra)
    return JSONResponse(body, status_code=status)


def available_group(node: "Node", label: str, gpus: list) -> dict | None:
    """One node's GPUs of one type as /status and /nodes list them: None
    when none of them is free."""
    available = sum(1 for g in gpus if node.schedulable and g.healthy and g.untouched())
    if available == 0:
        return None
    return {"node_name": node.name, "gpu_type": label, "available_gpus": available,
            "memory_per_gpu": round(max(g.total_mib for g in gpus) / 1024.0, 2),
            "utilization": round(sum(g.utilization for g in gpus) / len(gpus), 3)}


class Service:
    def __init__(self, inventory_path: str, data_dir: str, policy: str):
        self.nodes = load_inventory(inventory_path, DEFAULT_MEMORY_SPECS)
        self.loaded_at = time.time()
        self.gpu_by_uuid = {g.uuid: g for n in self.nodes for g in n.gpus}
        self.node_by_name = {n.name: n for n in self.nodes}
        self.ledger = Ledger(os.path.join(data_dir, "ledger.db"))
        self.policy = policy
        self.active: dict[str, dict] = {}  # allocation_id -> allocation
        # Held from reading the free state to recording the change, so two
        # requests can never be granted the same GPU.
        self.lock = threading.Lock()
        self.random = random.Random()
        self.log = logging.getLogger("peer")

    def hold(self, grants: list[dict], sign: int) -> None:
        for grant in grants:
            g = self.gpu_by_uuid[grant["gpu_uuid"]]
            if grant["exclusive"]:
                g.exclusively_held = sign > 0
            else:
                g.shared_holders += sign
                g.shared_reserved_mib += sign * grant["memory_mib"]

    def gpu_config(self, request: GpuRequest, grants: list[dict]) -> dict:
        by_node: dict[str, list[dict]] = {}
        for grant in grants:
            by_node.setdefault(grant["node_name"], []).append(grant)
        first = self.gpu_by_uuid[grants[0]["gpu_uuid"]]
        granted_mib = min(g["memory_mib"] for g in grants)
        limit_mib = int(granted_mib * request.gpu_memory_fraction)
        nodes = []
        for name, node_grants in by_node.items():
            indices = [g["gpu_index"] for g in node_grants]
            env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                   "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in indices)}
            nodes.append({"node_name": name, "address": self.node_by_name[name].address,
                          "gpu_indices": indices,
                          "gpu_uuids": [g["gpu_uuid"] for g in node_grants],
                          "interconnect": "nvlink" if same_island(
                              self.node_by_name[name], indices) else "pcie",
                          "environment": env})
        world = len(grants)
        return {"device": "gpu", "vendor": first.vendor, "gpu_type": first.type_label(),
                "gpu_count": world, "nodes": nodes, "environment": nodes[0]["environment"],
                "memory_gb_per_gpu": granted_mib / 1024.0, "memory_limit_mb": limit_mib,
                "gpu_memory_fraction": request.gpu_memory_fraction,
                "mixed_precision": {"enabled": request.mixed_precision,
                                    "dtype": ("bfloat16" if first.bf16 else "float16")
                                    if request.mixed_precision else "float32"},
                "distributed": {"enabled": request.distributed_training or world > 1,
                                "world_size": world, "nnodes": len(nodes),
                                "nproc_per_node": world // len(nodes),
                                "master_addr": nodes[0]["address"] or nodes[0]["node_name"],
                                "master_port": 29500, "backend": "nccl"},
                "warnings": []}

    def status(self) -> dict:
        total_gpus = available_gpus = allocated_gpus = 0
        utilization_sum = 0.0
        used_mib = reserved_mib = total_mib = 0
        available_nodes = []
        for node in self.nodes:
            groups: dict[str, list[Gpu]] = {}
            for g in node.gpus:
                total_gpus += 1
                utilization_sum += g.utilization
                used_mib += g.used_mib
                total_mib += g.total_mib
                reserved_mib += g.total_mib if g.exclusively_held else g.shared_reserved_mib
                if node.schedulable and g.healthy and g.untouched():
                    available_gpus += 1
                if not g.untouched():
                    allocated_gpus += 1
                groups.setdefault(g.type_label(), []).append(g)
            for label, gpus in groups.items():
                summary = available_group(node, label, gpus)
                if summary is not None:
                    available_nodes.append(summary)

        def ratio(part, whole):
            return round(part / whole, 3) if whole > 0 else 0.0
        return {"utilization": {"gpu_utilization": ratio(utilization_sum, total_gpus),
                                "gpu_memory_usage": ratio(used_mib, total_mib),
                                "gpu_memory_reserved": ratio(reserved_mib, total_mib)},
                "available_nodes": available_nodes, "total_nodes": len(self.nodes),
                "total_gpus": total_gpus, "available_gpus": available_gpus,
                "allocated_gpus": allocated_gpus,
                "active_allocations": len(self.active),
                "timestamp": iso8601(int(time.time() * 1000))}


    def nodes_view(self) -> dict:
        """/nodes: per node and GPU type with a GPU free, every GPU's state."""
        def state(node: Node, g: Gpu) -> str:
            if not g.healthy:
                return "unhealthy"
            if g.exclusively_held:
                return "allocated"
            if g.shared_holders > 0:
                return "shared"
            return "free" if node.schedulable else "cordoned"
        out = []
        for node in self.nodes:
            groups: dict[str, list[Gpu]] = {}
            for g in node.gpus:
                groups.setdefault(g.type_label(), []).append(g)
            for label, gpus in groups.items():
                summary = available_group(node, label, gpus)
                if summary is None:
                    continue
                out.append(summary | {
                    "total_gpus": len(gpus),
                    "max_free_memory_gb": round(max((g.free_mib() for g in gpus
                                                     if not g.exclusively_held and g.healthy),
                                                    default=0) / 1024.0, 2),
                    "gpus": [{"index": g.index, "uuid": g.uuid, "name": g.raw_name,
                              "gpu_type": label,
                              "memory_total_gb": round(g.total_mib / 1024.0, 2),
                              "memory_free_gb": round(g.free_mib() / 1024.0, 2),
                              "utilization": g.utilization, "temperature_c": g.temperature_c,
                              "healthy": g.healthy, "state": state(node, g)} for g in gpus]})
        return {"nodes": out, "count": len(out)}


class GpuCollector:
    """The families gpurm's /metrics writes about GPUs and allocations, read
    from the service's state at scrape time (labels node, gpu, uuid, model)."""

    GPU_FAMILIES = (
        ("utilization", "gpurm_gpu_utilization_ratio", "GPU busy ratio, 0..1."),
        ("used", "gpurm_gpu_memory_used_bytes", "GPU memory in use (all processes)."),
        ("total", "gpurm_gpu_memory_total_bytes", "GPU memory size."),
        ("reserved", "gpurm_gpu_memory_reserved_bytes", "GPU memory reserved by allocations."),
        ("temperature", "gpurm_gpu_temperature_celsius", "GPU temperature."),
        ("power", "gpurm_gpu_power_watts", "GPU power draw."),
        ("healthy", "gpurm_gpu_healthy", "1 when the GPU is healthy, 0 when not."),
        ("allocated", "gpurm_gpu_allocated", "1 when an active allocation holds the GPU."),
    )

    def __init__(self, service: Service):
        self.service = service

    def collect(self):
        up = GaugeMetricFamily("gpurm_up", "1 when the manager is initialized.", value=1)
        families = {key: GaugeMetricFamily(name, help_text,
                                           labels=["node", "gpu", "uuid", "model"])
                    for key, name, help_text in self.GPU_FAMILIES}
        for node in self.service.nodes:
            for g in node.gpus:
                labels = [node.name, str(g.index), g.uuid, g.raw_name]
                families["utilization"].add_metric(labels, g.utilization)
                families["used"].add_metric(labels, g.used_mib * 1048576.0)
                families["total"].add_metric(labels, g.total_mib * 1048576.0)
                reserved = g.total_mib if g.exclusively_held else g.shared_reserved_mib
                families["reserved"].add_metric(labels, reserved * 1048576.0)
                if g.temperature_c is not None:
                    families["temperature"].add_metric(labels, float(g.temperature_c))
                if g.power_w is not None:
                    families["power"].add_metric(labels, float(g.power_w))
                families["healthy"].add_metric(labels, 1.0 if g.healthy else 0.0)
                families["allocated"].add_metric(labels, 0.0 if g.untouched() else 1.0)
        snapshot = GaugeMetricFamily("gpurm_inventory_snapshot_timestamp_seconds",
                                     "When the inventory was loaded (Unix time).",
                                     value=self.service.loaded_at)
        active = GaugeMetricFamily("gpurm_allocations_active", "Active allocations.",
                                   value=len(self.service.active))
        yield up
        yield from families.values()
        yield snapshot
        yield active


class ObserveRequests:
    """Pure ASGI middleware: request counter and latency histogram per route
    pattern (what gpurm's request observer records)."""

    def __init__(self, app, requests_total: Counter, durations: Histogram):
        self.app = app
        self.requests_total = requests_total
        self.durations = durations

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def send_status(message):
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            method = scope["method"]
            self.requests_total.labels(method, route_path, str(status_code)).inc()
            self.durations.labels(method, route_path).observe(time.perf_counter() - start)


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="gpurm FastAPI peer", openapi_url=None, docs_url=None, redoc_url=None)
    registry = CollectorRegistry()
    registry.register(GpuCollector(service))
    requests_total = Counter("gpurm_http_requests_total", "HTTP requests",
                             ["method", "route", "code"], registry=registry)
    durations = Histogram("gpurm_http_request_duration_seconds", "HTTP request latency",
                          ["method", "route"], registry=registry,
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                   2.5, 5, 10))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:])
        return error(400, "invalid_argument", first.get("msg", "invalid request"), field)

    @app.get(BASE + "/health")
    async def health():
        return JSONResponse({"status": "ok", "ready": True, "provider": "static",
                             "nodes": len(service.nodes), "gpus": len(service.gpu_by_uuid)})

    @app.get(BASE + "/status")
    async def status():
        return JSONResponse(service.status())

    @app.get(BASE + "/nodes")
    async def nodes():
        return JSONResponse(service.nodes_view())

    @app.post(BASE + "/allocate")
    def allocate(request: GpuRequest, x_gpurm_owner: str = Header(""),
                 idempotency_key: str = Header("")):
        if request.policy and request.policy not in POLICIES:
            return error(400, "invalid_argument", f'unknown policy "{request.policy}"', "policy")
        if request.shared and request.memory_gb <= 0:
            return error(400, "invalid_argument", "a shared request must ask for memory_gb > 0",
                         "shared")
        owner = x_gpurm_owner or request.owner or "anonymous"
        with service.lock:
            grants, reasons = schedule(request, service.nodes, service.policy)
            if grants is None:
                return error(409, "unschedulable_now", "the request cannot be placed now",
                             success=False, reasons=reasons)
            now = int(time.time() * 1000)
            allocation = {
                "allocation_id": "alloc-%016x" % service.random.getrandbits(64),
                "owner": owner, "state": "active", "node_name": grants[0]["node_name"],
                "nodes": list(dict.fromkeys(g["node_name"] for g in grants)),
                "gpus": grants, "request": request.model_dump(exclude={"owner"}),
                "created_unix_ms": now,
                "lease_expires_unix_ms": now + request.lease_ttl_seconds * 1000
                if request.lease_ttl_seconds else 0,
                "idempotency_key": idempotency_key}
            service.ledger.insert(allocation)  # Durable (fsync) before the answer.
            service.hold(grants, +1)
            service.active[allocation["allocation_id"]] = allocation
        service.log.info("allocated %s to %s: %d GPU(s) on %s", allocation["allocation_id"],
                         owner, len(grants), allocation["node_name"])
        body = {**allocation, "created_at": iso8601(now), "ended_at": None}
        return JSONResponse({"success": True, "replayed": False,
                             "allocation_id": allocation["allocation_id"],
                             "node_name": allocation["node_name"], "nodes": allocation["nodes"],
                             "gpus": grants, "gpu_config": service.gpu_config(request, grants),
                             "allocation": body})

    @app.delete(BASE + "/allocations/{allocation_id}")
    def release(allocation_id: str):
        with service.lock:
            allocation = service.active.get(allocation_id)
            if allocation is None:
                return error(404, "not_found", f"allocation {allocation_id} not found")
            now = int(time.time() * 1000)
            service.ledger.end(allocation_id, now)  # Durable (fsync) before the answer.
            service.hold(allocation["gpus"], -1)
            del service.active[allocation_id]
        service.log.info("released %s", allocation_id)
        body = {**allocation, "state": "released",
                "created_at": iso8601(allocation["created_unix_ms"]), "ended_at": iso8601(now)}
        return JSONResponse({"released": True, "allocation": body})

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(ObserveRequests, requests_total=requests_total, durations=durations)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--policy", default="binpack", choices=sorted(POLICIES))
    args = parser.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    logging.basicConfig(filename=os.path.join(args.data_dir, "peer.log"), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    # The *_created series only repeat start times; gpurm does not write them.
    disable_created_metrics()
    app = create_app(Service(args.inventory, args.data_dir, args.policy))
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                access_log=False, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
