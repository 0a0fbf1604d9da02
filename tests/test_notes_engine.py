"""Notes checks against the private dockerd: containers, swarm services, compose labels."""

from __future__ import annotations

import json

import pytest

from helpers import BUSYBOX_IMAGE, by_id, put, run_dockfix

pytestmark = pytest.mark.engine

SECRET = "hunter2-engine"


def scan(root, url, *args):
    r = run_dockfix("scan", "--root", str(root), "--docker-host", url, "--format", "json", *args)
    assert r.returncode in (0, 1, 3), r.stderr
    return json.loads(r.stdout), r


def subjects(doc, check_id):
    return {f["subject"]: f for f in by_id(doc, check_id)}


def test_env_password_on_containers(engine, tmp_path):
    engine.cli("create", "--name", "shop-db", "-e", f"MYSQL_ROOT_PASSWORD={SECRET}", "-e", "MYSQL_DATABASE=shop",
               BUSYBOX_IMAGE, "sleep", "1")
    engine.cli("create", "--name", "shop-app", "-e", f"DATABASE_URL=postgres://shop:{SECRET}@db/shop",
               BUSYBOX_IMAGE, "sleep", "1")
    engine.cli("create", "--name", "clean", "-e", "MYSQL_PASSWORD_FILE=/run/secrets/db", BUSYBOX_IMAGE, "sleep", "1")
    doc, r = scan(tmp_path, engine.url, "--only", "env-password")
    found = subjects(doc, "env-password")
    assert found["container:shop-db"]["status"] == "fail"
    assert "MYSQL_ROOT_PASSWORD set in the environment of the running workload" in found["container:shop-db"]["evidence"]
    assert found["container:shop-app"]["status"] == "fail"
    assert "DATABASE_URL carries a password inside a URL/DSN" in found["container:shop-app"]["evidence"]
    assert found["container:clean"]["status"] == "pass"
    for fmt in ("text", "json", "sarif"):
        out = run_dockfix("scan", "--root", str(tmp_path), "--docker-host", engine.url, "--format", fmt, "-v")
        assert SECRET not in out.stdout + out.stderr


def test_env_password_and_registry_on_swarm_services(swarm_engine, tmp_path):
    swarm_engine.cli("tag", BUSYBOX_IMAGE, "registry:2")
    swarm_engine.cli("service", "create", "--detach", "--no-resolve-image", "--name", "api",
                     "-e", f"API_TOKEN={SECRET}", "-e", "LOG_LEVEL=info", BUSYBOX_IMAGE, "sleep", "3600")
    # the registry of the team's notes: S3 storage with encryption turned off, plain HTTP
    swarm_engine.cli("service", "create", "--detach", "--no-resolve-image", "--name", "scw-local-registry",
                     "-e", "REGISTRY_STORAGE=s3", "-e", "REGISTRY_STORAGE_S3_REGION=eu-west-1",
                     "-e", "REGISTRY_STORAGE_S3_BUCKET=scw_internal_registry_bucket",
                     "-e", "REGISTRY_STORAGE_S3_ENCRYPT=false", "-e", "REGISTRY_STORAGE_S3_V4AUTH=true",
                     "registry:2", "sleep", "3600")
    swarm_engine.cli("service", "create", "--detach", "--no-resolve-image", "--name", "good-registry",
                     "-e", "REGISTRY_STORAGE=s3", "-e", "REGISTRY_STORAGE_S3_ENCRYPT=true",
                     "-e", "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt", "-e", "REGISTRY_HTTP_TLS_KEY=/certs/domain.key",
                     "registry:2", "sleep", "3600")
    doc, r = scan(tmp_path, swarm_engine.url, "--only", "env-password,registry-s3-encryption,registry-https")
    env = subjects(doc, "env-password")
    assert env["service:api"]["status"] == "fail" and "API_TOKEN" in env["service:api"]["evidence"]
    s3 = subjects(doc, "registry-s3-encryption")
    assert s3["service:scw-local-registry"]["status"] == "fail"
    assert "REGISTRY_STORAGE_S3_ENCRYPT=false" in s3["service:scw-local-registry"]["evidence"]
    assert s3["service:good-registry"]["status"] == "pass"
    https = subjects(doc, "registry-https")
    assert https["service:scw-local-registry"]["status"] == "fail"
    assert https["service:good-registry"]["status"] == "pass"
    assert SECRET not in r.stdout + r.stderr


def test_compose_files_are_found_through_container_labels(engine, tmp_path):
    put(tmp_path, "srv/shop/compose.yaml", f"services:\n  db:\n    image: mysql:8\n    environment:\n"
                                           f"      MYSQL_ROOT_PASSWORD: {SECRET}\n")
    engine.cli("create", "--name", "shop-db-1", "--label", "com.docker.compose.project=shop",
               "--label", "com.docker.compose.project.config_files=/srv/shop/compose.yaml",
               "--label", "com.docker.compose.project.working_dir=/srv/shop", BUSYBOX_IMAGE, "sleep", "1")
    doc, r = scan(tmp_path, engine.url, "--only", "env-password")
    env = subjects(doc, "env-password")
    assert env["compose:/srv/shop/compose.yaml#db"]["status"] == "fail"
    assert env["compose:/srv/shop/compose.yaml#db"]["location"] == {"path": "/srv/shop/compose.yaml", "line": 5}
    assert SECRET not in r.stdout


def test_engine_facts_storage_driver_and_version(engine, tmp_path):
    doc, _ = scan(tmp_path, engine.url, "--only", "storage-driver,1.2.2,1.1.1")
    (sd,) = by_id(doc, "storage-driver")
    if engine.version == "28":  # the containerd image store: docker info says overlayfs, a snapshotter
        assert sd["status"] == "pass" and sd["evidence"].startswith(
            "storage driver overlayfs (docker info): the containerd image store's overlay snapshotter"), sd
    else:
        assert sd["status"] == "pass" and sd["evidence"].startswith("storage driver overlay2 (docker info)")
    (ver,) = by_id(doc, "1.2.2")
    assert ver["status"] == "manual" and ver["evidence"].startswith(f"engine {engine.version}."), ver
    (part,) = by_id(doc, "1.1.1")  # the private engine's data root, from docker info
    assert "docker info DockerRootDir" in part["evidence"]


def test_dead_engine_is_an_error_not_a_pass(tmp_path):
    doc, _ = scan(tmp_path, f"unix://{tmp_path}/no.sock", "--only", "env-password,storage-driver,1.2.2")
    for f in doc["findings"]:
        if f["id"] == "storage-driver":
            assert f["status"] == "skip"  # nothing else says which driver it is
        else:
            assert f["status"] == "error" and "not reachable" in f["evidence"], f
