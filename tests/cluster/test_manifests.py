"""The container definitions agree with each other and with ``docker/entrypoint.sh``: the compose file validates
(Debian's ``docker-compose config``), every service and pod runs one of the entrypoint's roles in an image the
Dockerfiles build, and the KubeRay / Kubernetes manifests have the fields their controllers need."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
K8S = DOCKER / "k8s"
ENTRYPOINT_IN_IMAGE = "/opt/curator/docker/entrypoint.sh"
COMPOSE_ENV = {"RAY_AUTH_TOKEN": "t" * 32, "CURATOR_TOKENS": "alice:" + "x" * 24}
IMAGES = {"docker/Dockerfile": "curator:latest", "docker/Dockerfile.gpu": "curator-gpu:latest"}


def entrypoint_roles() -> set[str]:
    """The roles the entrypoint's ``case "$role"`` accepts (``health`` is the health check, not a service role)."""
    text = (DOCKER / "entrypoint.sh").read_text()
    block = text[text.index('case "$role" in'):]
    roles = set(re.findall(r"^  ([a-z]+)\)$", block, flags=re.M))
    assert {"head", "worker", "api", "train", "health"} <= roles, roles
    return roles - {"health"}


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _image(service: dict) -> str:
    """A service's image with compose's ``${VAR:-default}`` resolved to the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", service["image"])


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _by_kind(kind: str) -> list[dict]:
    return [d for d in k8s_docs() if d["kind"] == kind]


def _pod_specs() -> list[tuple[str, dict]]:
    """(owner name, pod spec) of every pod template in the manifests."""
    out = []
    for d in k8s_docs():
        if d["kind"] == "RayCluster":
            out.append((f"{d['metadata']['name']}/head", d["spec"]["headGroupSpec"]["template"]["spec"]))
            out += [(f"{d['metadata']['name']}/{g['groupName']}", g["template"]["spec"])
                    for g in d["spec"]["workerGroupSpecs"]]
        elif d["kind"] == "Deployment":
            out.append((d["metadata"]["name"], d["spec"]["template"]["spec"]))
        elif d["kind"] == "RayJob":
            out.append((d["metadata"]["name"] + "/submitter", d["spec"]["submitterPodTemplate"]["spec"]))
    return out


def _env(container: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- compose


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="Debian's docker-compose is not installed (apt-get install docker-compose)")
@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]])
def test_docker_compose_config_validates(profile: list[str]):
    env = {**os.environ, **COMPOSE_ENV}
    proc = subprocess.run(["docker-compose", "-f", "docker-compose.yml", *profile, "config", "-q"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = subprocess.run(["docker-compose", "-f", "docker-compose.yml", *profile, "config", "--services"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=60).stdout.split()
    # (compose 1.29 lists the services of every profile)
    assert set(names) == {"ray-head", "ray-worker", "api", "postgres", "minio", "minio-bucket", "ray-worker-gpu",
                          "trainer"}


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_docker_compose_refuses_to_start_without_the_cluster_token():
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV}
    env["CURATOR_TOKENS"] = COMPOSE_ENV["CURATOR_TOKENS"]
    proc = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "config", "-q"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "set RAY_AUTH_TOKEN" in proc.stderr


def test_compose_services_run_entrypoint_roles_in_the_built_images():
    services = compose()["services"]
    roles = entrypoint_roles()
    built = {}
    for name, svc in services.items():
        if "build" in svc:
            dockerfile = svc["build"]["dockerfile"]
            assert (REPO / svc["build"]["context"] / dockerfile).is_file()
            assert _image(svc) == IMAGES[dockerfile], name
            built[_image(svc)] = dockerfile
    assert set(built) == set(IMAGES.values())
    ours = {n: s for n, s in services.items() if _image(s) in built}
    assert set(ours) == {"ray-head", "ray-worker", "api", "ray-worker-gpu", "trainer"}
    assert {n: s["command"][0] for n, s in ours.items()} == {
        "ray-head": "head", "ray-worker": "worker", "api": "api", "ray-worker-gpu": "worker", "trainer": "train"}
    assert all(s["command"][0] in roles for s in ours.values())


def test_compose_cluster_wiring():
    services = compose()["services"]
    head, worker, api = services["ray-head"], services["ray-worker"], services["api"]
    # scalable workers: nothing that two replicas could not share
    assert "container_name" not in worker and "ports" not in worker and "hostname" not in worker
    assert worker["environment"]["RAY_HEAD"] == head["hostname"] == "ray-head"
    for name, svc in services.items():
        port = (svc.get("environment") or {}).get("RAY_PORT")
        assert port in (None, "6380"), name  # one GCS port everywhere, never Redis's 6379
    assert head["environment"]["RAY_PORT"] == worker["environment"]["RAY_PORT"] == "6380"
    assert api["environment"]["CURATOR_RAY_ADDRESS"] == "http://ray-head:8265"
    assert head["environment"]["RAY_DASHBOARD_PORT"] == "8265"
    db = api["environment"]["CURATOR_DATABASE_URL"]
    assert db.startswith("postgresql+psycopg://") and "@postgres:5432/" in db
    assert services["postgres"]["image"].startswith("postgres:")
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    for svc in (head, worker, api):
        assert svc["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(svc["environment"])
    assert services["minio"]["image"].startswith("minio/minio:")
    for name in ("ray-worker-gpu", "trainer"):
        svc = services[name]
        assert svc["profiles"] == ["gpu"]
        (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert services["ray-worker-gpu"]["environment"]["RAY_NUM_GPUS"]


def test_dockerfiles():
    cpu, gpu = (DOCKER / "Dockerfile").read_text(), (DOCKER / "Dockerfile.gpu").read_text()
    entry = f'ENTRYPOINT ["/usr/bin/tini", "--", "{ENTRYPOINT_IN_IMAGE}"]'
    for text in (cpu, gpu):
        assert entry in text
        assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"" + re.escape(ENTRYPOINT_IN_IMAGE) + r"\", \"health\"\]", text,
                         flags=re.M)
        assert re.search(r"^USER curator$", text, flags=re.M) and "useradd" in text and "--uid 1000" in text
        assert "tini" in text.split("apt-get install", 1)[1].split("\n")[0]
        assert "ARG TORCH_VERSION=2.13.0" in text  # the pin, never an open range
        assert "COPY --chmod=0755 docker/entrypoint.sh docker/entrypoint.sh" in text
        # the object-store client, pinned as pyproject pins it (s3fs is no core dependency)
        s3fs = re.search(r'^ARG S3FS="([^"]+)"$', text, flags=re.M).group(1).split()
        pinned = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["s3"]
        assert s3fs and set(s3fs) <= set(pinned)
        assert '".[${EXTRAS}]" ${S3FS}' in text
    assert re.search(r"^FROM python:3\.11-slim$", cpu, flags=re.M)
    assert "ARG EXTRAS=service" in cpu and "*,train,*)" in cpu  # torch only with the train extra
    assert re.search(r"^FROM nvidia/cuda:12\.[0-9.]+-cudnn-runtime-ubuntu24\.04$", gpu, flags=re.M)
    assert "ARG EXTRAS=train" in gpu
    for name in ("Dockerfile", "Dockerfile.gpu"):  # BuildKit's per-Dockerfile ignore file keeps .venv out
        ignore = (DOCKER / f"{name}.dockerignore").read_text().split()
        assert ignore[ignore.index("*") + 1:].count("!curator/") == 1


# --- Kubernetes


def test_manifests_parse_with_known_kinds():
    kinds = sorted((d["apiVersion"], d["kind"]) for d in k8s_docs())
    assert kinds == [("apps/v1", "Deployment"), ("ray.io/v1", "RayCluster"), ("ray.io/v1", "RayJob"),
                     ("v1", "ConfigMap"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Secret"), ("v1", "Secret"),
                     ("v1", "Service")]
    for d in k8s_docs():
        assert d["metadata"]["name"] and d["metadata"]["labels"]["app.kubernetes.io/name"] == "curator"


def test_every_pod_runs_an_entrypoint_role_of_a_compose_image():
    roles = entrypoint_roles()
    images = set(IMAGES.values())
    seen_roles = {}
    for owner, pod in _pod_specs():
        assert pod["containers"], owner
        for c in pod["containers"]:
            assert c["name"] and c["image"] in images, owner
            if owner.endswith("/submitter"):
                assert c["command"][:3] == ["ray", "job", "submit"]
                continue
            assert c["command"] == ["/usr/bin/tini", "--", ENTRYPOINT_IN_IMAGE], owner
            assert c["args"][0] in roles, owner
            seen_roles[owner] = c["args"][0]
    assert seen_roles == {"curator/head": "head", "curator/cpu": "worker", "curator-api": "api"}


def test_env_references_resolve():
    config = {(d["kind"], d["metadata"]["name"]): d for d in k8s_docs() if d["kind"] in ("ConfigMap", "Secret")}
    for owner, pod in _pod_specs():
        for c in pod["containers"]:
            for ref in c.get("envFrom", []):
                kind = "ConfigMap" if "configMapRef" in ref else "Secret"
                assert (kind, (ref.get("configMapRef") or ref["secretRef"])["name"]) in config, (owner, ref)
            for value in _env(c).values():
                if isinstance(value, dict) and "secretKeyRef" in value:
                    ref = value["secretKeyRef"]
                    assert ref["key"] in config[("Secret", ref["name"])]["stringData"], (owner, ref)


def test_raycluster_matches_compose_and_entrypoint():
    (cluster,) = _by_kind("RayCluster")
    env_cm = next(d for d in _by_kind("ConfigMap") if d["metadata"]["name"] == "curator-env")["data"]
    assert cluster["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    head = cluster["spec"]["headGroupSpec"]
    assert head["rayStartParams"]["port"] == env_cm["RAY_PORT"] == compose()["services"]["ray-head"][
        "environment"]["RAY_PORT"] == "6380"
    (head_c,) = head["template"]["spec"]["containers"]
    assert {p["containerPort"] for p in head_c["ports"]} == {6380, 8265}
    assert cluster["spec"]["rayVersion"].split(".")[:2] == ["2", "60"]
    for group in cluster["spec"]["workerGroupSpecs"]:
        (c,) = group["template"]["spec"]["containers"]
        assert _env(c)["RAY_HEAD"] == f"{cluster['metadata']['name']}-head-svc"  # KubeRay's head Service
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    assert env_cm["RAY_AUTH_MODE"] == "token"


def test_api_deployment_and_service():
    (dep,) = _by_kind("Deployment")
    (svc,) = _by_kind("Service")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = _env(c)
    assert env["CURATOR_DATABASE_URL"] == {"secretKeyRef": {"name": "curator-api", "key": "CURATOR_DATABASE_URL"}}
    secret = next(d for d in _by_kind("Secret") if d["metadata"]["name"] == "curator-api")
    assert secret["stringData"]["CURATOR_DATABASE_URL"].startswith("postgresql+psycopg://")
    (cluster,) = _by_kind("RayCluster")
    assert env["CURATOR_RAY_ADDRESS"] == f"http://{cluster['metadata']['name']}-head-svc:8265"
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"] == labels
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port_names == {"http": int(env["CURATOR_PORT"])}
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_rayjob_runs_the_commoncrawl_recipe_from_its_configmap():
    from curator.spec import validate_spec

    (job,) = _by_kind("RayJob")
    (cluster,) = _by_kind("RayCluster")
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    entry = job["spec"]["entrypoint"].split()
    assert entry[:2] == ["curator", "run"]
    spec_path = Path(entry[2])
    (head_c,) = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    mount = next(m for m in head_c["volumeMounts"] if Path(m["mountPath"]) == spec_path.parent)
    volume = next(v for v in cluster["spec"]["headGroupSpec"]["template"]["spec"]["volumes"]
                  if v["name"] == mount["name"])
    cm = next(d for d in _by_kind("ConfigMap") if d["metadata"]["name"] == volume["configMap"]["name"])
    spec = yaml.safe_load(cm["data"][spec_path.name])
    validate_spec(spec, check_inputs=False)
    recipe = yaml.safe_load((REPO / "pipelines" / "commoncrawl.yaml").read_text())
    assert spec["stages"] == recipe["stages"] and spec["seed"] == recipe["seed"]
    assert spec["inputs"][0]["path"].startswith("s3://") and spec["output"]["path"].startswith("s3://")
    (sub,) = job["spec"]["submitterPodTemplate"]["spec"]["containers"]
    assert sub["command"][sub["command"].index("--") + 1:] == entry
