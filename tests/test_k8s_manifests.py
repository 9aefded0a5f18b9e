"""The Kubernetes manifests: every overlay renders offline with `kubectl kustomize`, every
rendered resource validates (strict) against the Kubernetes schemas kubernetes-validate
ships, and the rendered settings are the ones deploy/k8s promises: a 3-node JetStream on
files, streams at replicas 3, one Bytewax process per collector pod with -i from the
ordinal and -a naming every pod, recovery, probes, requests, secrets by reference, no root.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from schemas.clickhouse import ClickHouseSettings
from schemas.settings import CollectSettings, StoreSettings
from schemas.streams import NatsAuth, StreamSettings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.37.0"
NAMESPACES = {"dev": "marketprism-dev", "prod": "marketprism"}
SECRET_ENV = re.compile(r"(PASSWORD|USER|TOKEN|CREDS|SECRET)$")


def _kubectl() -> str:
    found = Path(sys.executable).parent / "kubectl"
    return str(found) if found.exists() else (shutil.which("kubectl") or "kubectl")


def render(overlay: str) -> list[dict]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        check=True, capture_output=True, text=True, timeout=120,
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs if d["kind"] in ("StatefulSet", "Deployment")
    ]


def container(workload: dict, name: str) -> dict:
    (found,) = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def collector_command(c: dict) -> list[str]:
    """The collector's shell script, its `exec` line split into words as the shell would."""
    assert c["command"] == ["/bin/sh", "-c"], c["command"]
    (script,) = c["args"]
    lines = [line.strip() for line in script.splitlines() if line.strip()]
    assert "ORDINAL=${HOSTNAME##*-}" in lines, script
    (exec_line,) = [line for line in lines if line.startswith("exec ")]
    return shlex.split(exec_line)


def flag(words: list[str], short: str) -> str:
    assert words.count(short) == 1, f"{short} appears {words.count(short)} times in {words}"
    return words[words.index(short) + 1]


def test_every_resource_validates_strictly(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered
    kinds = sorted({d["kind"] for d in docs})
    assert {"StatefulSet", "Deployment", "Service", "ConfigMap", "Namespace"} <= set(kinds), kinds
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["metadata"].get("namespace", NAMESPACES[overlay]) == NAMESPACES[overlay] or doc["kind"] == "Namespace"


def test_strict_validation_rejects_a_misspelt_field() -> None:
    # The check above is only worth something if a wrong manifest fails it.
    collector = one(render("dev"), "StatefulSet", "collector")
    collector["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"tcpSocket": {"port": 9108}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(collector, KUBERNETES_VERSION, strict=True)


def test_nats_is_a_three_node_jetstream_on_files(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    nats = one(docs, "StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    headless = one(docs, "Service", nats["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["spec"]["ports"]} >= {4222, 6222}
    client = one(docs, "Service", "nats")
    assert client["spec"].get("clusterIP") != "None"
    assert [p["port"] for p in client["spec"]["ports"]] == [4222]

    (claim,) = nats["spec"]["volumeClaimTemplates"]
    nats_container = container(nats, "nats")
    mounts = {m["name"]: m["mountPath"] for m in nats_container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"

    config_volume = next(v for v in nats["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    config_map = one(docs, "ConfigMap", config_volume["configMap"]["name"])
    config = config_map["data"]["nats.conf"]
    assert nats_container["command"] == ["nats-server"]
    assert nats_container["args"] == ["--config", f"{mounts['config']}/nats.conf"]
    store_dir = re.search(r"jetstream\s*\{[^}]*store_dir:\s*(\S+)", config)
    assert store_dir and store_dir.group(1).startswith(mounts[claim["metadata"]["name"]] + "/")
    assert re.search(r"cluster\s*\{[^}]*port:\s*6222", config)
    routes = re.findall(r"nats://([\w.-]+):6222", config)
    assert routes == [f"nats-{i}.{headless['metadata']['name']}" for i in range(3)]
    assert re.search(r"user:\s*\$NATS_USER", config) and re.search(r"password:\s*\$NATS_PASSWORD", config)
    env = env_of(nats_container)
    assert env["NATS_USER"]["valueFrom"]["secretKeyRef"]["key"] == "user"
    assert env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"


def test_every_stream_at_three_replicas_in_collector_and_store(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    streams = list(StreamSettings().streams())
    assert streams == ["ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_TRADES", "MARKET_DATA", "FEATURES"]
    for kind, name in (("StatefulSet", "collector"), ("Deployment", "store")):
        env = env_of(container(one(docs, kind, name), name))
        values = {stream: env[f"MARKETPRISM_NATS_{stream}__REPLICAS"]["value"] for stream in streams}
        assert values == dict.fromkeys(streams, "3"), (name, values)
        # The settings model reads them as the streams' replicas.
        settings = StreamSettings(**{stream.lower(): {"replicas": int(v)} for stream, v in values.items()})
        assert {s: lim.replicas for s, lim in settings.streams().items()} == dict.fromkeys(streams, 3)


def test_collector_runs_one_bytewax_process_per_pod(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered
    collector = one(docs, "StatefulSet", "collector")
    replicas = collector["spec"]["replicas"]
    assert replicas == {"dev": 2, "prod": 3}[overlay]
    assert collector["spec"]["podManagementPolicy"] == "Parallel"
    service = one(docs, "Service", collector["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "bytewax")

    main = container(collector, "collector")
    words = collector_command(main)
    assert words[:5] == ["exec", "python", "-m", "bytewax.run", "flows.collect"]
    assert flag(words, "-i") == "$ORDINAL"
    addresses = flag(words, "-a").split(";")
    assert addresses == [f"collector-{i}.{service['metadata']['name']}.$(POD_NAMESPACE).svc:{port}" for i in range(replicas)]
    env = env_of(main)
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["BYTEWAX_PROCESSES"]["value"] == str(replicas)
    assert any(p["containerPort"] == port for p in main["ports"])

    # The books, and a control bus that reaches across pods.
    assert env["MARKETPRISM_VENUES"]["value"].split(",") == ["binance", "okx"]
    symbols = env["MARKETPRISM_SYMBOLS"]["value"].split(",")
    assert symbols == {"dev": ["BTC-USDT", "ETH-USDT"], "prod": ["BTC-USDT", "ETH-USDT", "SOL-USDT"]}[overlay]
    assert env["MARKETPRISM_CONTROL_BUS"]["value"] == "nats"
    assert env["MARKETPRISM_NATS_URL"]["value"] == "nats://nats:4222"
    assert "clickhouse" not in env["MARKETPRISM_SINKS"]["value"].split(","), "storage is the store's job"


def test_collector_recovery_flags_and_volumes(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    collector = one(docs, "StatefulSet", "collector")
    main = container(collector, "collector")
    words = collector_command(main)
    recovery_dir = flag(words, "-r")
    assert float(flag(words, "-s")) > 0
    assert float(flag(words, "-b")) >= 0
    claims = {c["metadata"]["name"]: c for c in collector["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert mounts[recovery_dir] in claims, "the recovery directory must be on a PVC of the pod"
    assert mounts[env_of(main)["MARKETPRISM_DATA_DIR"]["value"]] in claims

    # The init step creates this pod's partition on the same volume, for as many processes as pods.
    (init,) = collector["spec"]["template"]["spec"]["initContainers"]
    init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    assert init_mounts[recovery_dir] == mounts[recovery_dir]
    script = init["args"][0]
    assert f"DIR={recovery_dir}" in script and "python -m bytewax.recovery" in script
    assert 'part-$ORDINAL.sqlite3' in script
    assert env_of(init)["BYTEWAX_PROCESSES"]["value"] == str(collector["spec"]["replicas"])


def test_init_script_creates_this_pods_partition_once(tmp_path: Path) -> None:
    # Run the rendered init script for real (bytewax of this venv) as pod collector-1.
    collector = one(render("prod"), "StatefulSet", "collector")
    (init,) = collector["spec"]["template"]["spec"]["initContainers"]
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    script = init["args"][0].replace("/var/lib/marketprism/recovery", str(recovery))
    env = {"HOSTNAME": "collector-1", "BYTEWAX_PROCESSES": env_of(init)["BYTEWAX_PROCESSES"]["value"],
           "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    first = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in recovery.iterdir()) == ["part-1.sqlite3"]
    assert "created recovery partition 1 of 3" in first.stdout
    second = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and second.stdout == "", "a restart must keep the partition it has"


_COUNTING_FLOW = """
import bytewax.operators as op
from bytewax.connectors.stdio import StdOutSink
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource

flow = Dataflow("k8s_recovery_layout")
keyed = op.key_on("key", op.input("in", flow, TestingSource(list(range(40)))), lambda x: str(x % 4))
op.output("out", op.stateful_map("count", keyed, lambda n, _x: ((n or 0) + 1, (n or 0) + 1)), StdOutSink())
"""


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_one_partition_per_pod_is_a_recovery_layout_bytewax_accepts(tmp_path: Path) -> None:
    # Each pod's init step makes its own part-<ordinal> on its own volume; a Bytewax cluster
    # of those processes runs, snapshots into both, and resumes from them.
    collector = one(render("dev"), "StatefulSet", "collector")
    (init,) = collector["spec"]["template"]["spec"]["initContainers"]
    processes = int(env_of(init)["BYTEWAX_PROCESSES"]["value"])
    assert processes == collector["spec"]["replicas"] == 2
    (tmp_path / "k8s_recovery_flow.py").write_text(_COUNTING_FLOW)
    dirs = []
    for ordinal in range(processes):
        recovery = tmp_path / f"recovery-collector-{ordinal}"
        recovery.mkdir()
        script = init["args"][0].replace("/var/lib/marketprism/recovery", str(recovery))
        env = {"HOSTNAME": f"collector-{ordinal}", "BYTEWAX_PROCESSES": str(processes),
               "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
        subprocess.run(["/bin/sh", "-c", script], env=env, check=True, capture_output=True, timeout=60)
        assert [p.name for p in recovery.iterdir()] == [f"part-{ordinal}.sqlite3"]
        dirs.append(recovery)

    def run_cluster() -> list[str]:
        addresses = ";".join(f"127.0.0.1:{port}" for port in _free_ports(processes))
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bytewax.run", "k8s_recovery_flow", "-i", str(i), "-a", addresses,
                 "-r", str(dirs[i]), "-s", "1", "-b", "0"],
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for i in range(processes)
        ]
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]
            # Items only: a process that starts first also prints its retries to reach the other.
            outputs.extend(line for line in out.splitlines() if line.startswith("('"))
        return outputs

    first = run_cluster()
    assert sorted(first) == sorted(f"('{k}', {n})" for k in "0123" for n in range(1, 11))
    for recovery in dirs:
        (part,) = recovery.iterdir()
        assert part.stat().st_size > 0
    # The input was read to its end before: resumed, the cluster has nothing left to emit.
    assert run_cluster() == []


def test_probes_on_the_metrics_endpoint(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    for kind, name, prefix, expected in (("StatefulSet", "collector", "MARKETPRISM_METRICS", 9108),
                                         ("Deployment", "store", "MARKETPRISM_STORE_METRICS", 9109)):
        workload = one(docs, kind, name)
        main = container(workload, name)
        env = env_of(main)
        assert env[f"{prefix}_HOST"]["value"] == "0.0.0.0"
        port = int(env[f"{prefix}_PORT"]["value"])
        assert port == expected
        assert workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        named = {p["name"]: p["containerPort"] for p in main["ports"]}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            get = main[probe]["httpGet"]
            assert get["path"] == "/metrics", (name, probe)
            assert named.get(get["port"], get["port"]) == port, (name, probe)


def test_every_container_has_requests(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    for where, spec in pod_specs(docs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            requests = c["resources"]["requests"]
            assert set(requests) >= {"cpu", "memory"}, (where, c["name"])
            assert c["resources"]["limits"]["memory"], (where, c["name"])
    collector = container(one(docs, "StatefulSet", "collector"), "collector")["resources"]
    # The benches' figures (deploy/SCALING.md): ~140 MB at real rates, ~300 MB at 10x with faults.
    assert collector["requests"] == {"cpu": "500m", "memory": "384Mi"}
    assert collector["limits"]["memory"] == "768Mi"
    store = container(one(docs, "Deployment", "store"), "store")["resources"]
    # The store's: 445-515 MB at real rates, up to 860 MB at 10x.
    assert store["requests"]["memory"] == "768Mi" and store["limits"]["memory"] == "1536Mi"


def test_every_secret_comes_from_a_secret_key_ref(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered
    secret_names = set()
    for where, spec in pod_specs(docs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            for name, entry in env_of(c).items():
                if SECRET_ENV.search(name):
                    assert "value" not in entry, f"{where} {c['name']} {name} has a literal value"
                    ref = entry["valueFrom"]["secretKeyRef"]
                    secret_names.add(ref["name"])
            for source in c.get("envFrom", []):
                assert "secretRef" in source or "configMapRef" in source
    store = env_of(container(one(docs, "Deployment", "store"), "store"))
    assert store["MARKETPRISM_CLICKHOUSE_URL"]["value"] == "clickhouse://clickhouse:9000"
    for name in ("MARKETPRISM_NATS_USER", "MARKETPRISM_NATS_PASSWORD", "MARKETPRISM_CLICKHOUSE_USER",
                 "MARKETPRISM_CLICKHOUSE_PASSWORD"):
        assert "secretKeyRef" in store[name]["valueFrom"], name
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    if overlay == "prod":
        assert secrets == {}, "prod keeps no Secret in the repository: it is created out of band"
        assert secret_names == {"marketprism-nats", "marketprism-clickhouse"}
    else:
        # The dev overlay's example Secrets: every reference resolves to one of them (hashed names).
        assert secret_names == set(secrets)
        assert {n.rsplit("-", 1)[0] for n in secrets} == {"marketprism-nats", "marketprism-clickhouse"}
    # No other manifest carries a literal credential: the dummy dev password lives in one file only.
    holders = [p.relative_to(K8S).as_posix() for p in K8S.rglob("*") if p.is_file()
               and p.suffix in (".yaml", ".conf") and "dev-only-not-a-secret" in p.read_text()]
    assert holders == ["overlays/dev/kustomization.yaml"]


def test_no_container_runs_as_root(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    workloads = pod_specs(docs)
    assert len(workloads) == 4
    for where, spec in workloads:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, where
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", where
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (where, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (where, c["name"])
            assert sc.get("runAsUser", pod["runAsUser"]) > 0 and sc.get("runAsNonRoot", True) is True
    for d in docs:
        if d["kind"] == "Namespace":
            assert d["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_store_is_a_deployment_and_clickhouse_a_statefulset(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    store = one(docs, "Deployment", "store")
    assert store["spec"]["replicas"] == 1 and store["spec"]["strategy"]["type"] == "Recreate"
    assert container(store, "store")["command"] == ["python", "-m", "bytewax.run", "flows.store"]
    assert not [d for d in docs if d["metadata"]["name"] == "store" and d["kind"] == "StatefulSet"]

    clickhouse = one(docs, "StatefulSet", "clickhouse")
    assert clickhouse["spec"]["replicas"] == 1
    (claim,) = clickhouse["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container(clickhouse, "clickhouse")["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/clickhouse"
    service = one(docs, "Service", "clickhouse")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["native"] == 9000


def test_every_image_is_pinned_or_ours(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    images = {c["image"] for _, spec in pod_specs(docs) for c in spec.get("initContainers", []) + spec["containers"]}
    assert images == {"marketprism:latest", "nats:2.10-alpine", "clickhouse/clickhouse-server:24.8"}


def _known_env_names() -> set[str]:
    names = set()
    for model, prefix in ((CollectSettings, "MARKETPRISM_"), (StoreSettings, "MARKETPRISM_"),
                          (NatsAuth, "MARKETPRISM_NATS_"), (ClickHouseSettings, "MARKETPRISM_CLICKHOUSE_")):
        names |= {prefix + field.upper() for field in model.model_fields}
    for stream, limits in StreamSettings().streams().items():
        names |= {f"MARKETPRISM_NATS_{stream}__{field.upper()}" for field in type(limits).model_fields}
    return names


def test_the_settings_models_read_what_the_manifests_set(
    rendered: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A misspelt variable would be ignored silently by the settings (extra="ignore"): every
    # MARKETPRISM_ name must be a field, and the real models must read the values.
    _, docs = rendered
    known = _known_env_names()
    for kind, name in (("StatefulSet", "collector"), ("Deployment", "store")):
        env = env_of(container(one(docs, kind, name), name))
        ours = {k: v for k, v in env.items() if k.startswith("MARKETPRISM_")}
        assert set(ours) <= known, (name, sorted(set(ours) - known))
        with monkeypatch.context() as patched:
            for key in [k for k in os.environ if k.startswith("MARKETPRISM_")]:
                patched.delenv(key)
            for key, entry in ours.items():
                # Secret values are the cluster's; any value shows the variable is read.
                patched.setenv(key, entry.get("value", f"from-secret-{key.lower()}"))
            auth = NatsAuth()
            assert auth.user == "from-secret-marketprism_nats_user"
            assert auth.password is not None and auth.password.get_secret_value() == "from-secret-marketprism_nats_password"
            assert {s: lim.replicas for s, lim in StreamSettings().streams().items()} == dict.fromkeys(
                ["ORDERBOOK_FULL", "ORDERBOOK_DELTA", "MARKET_TRADES", "MARKET_DATA", "FEATURES"], 3)
            settings = CollectSettings()
            assert settings.nats_url == "nats://nats:4222"
            assert str(settings.data_dir) == "/var/lib/marketprism/data"
            if name == "collector":
                assert settings.metrics_host == "0.0.0.0" and settings.metrics_port == 9108
                assert settings.control_bus == "nats"
                assert settings.sinks == ["nats", "recorder"]
                assert len(settings.venues) * len(settings.symbols) >= 4
            else:
                store = StoreSettings()
                assert store.store_metrics_host == "0.0.0.0" and store.store_metrics_port == 9109
                assert store.nats_url == "nats://nats:4222"
                storage = ClickHouseSettings()
                assert storage.url == "clickhouse://clickhouse:9000"
                assert storage.user == "from-secret-marketprism_clickhouse_user"
