"""Containers with the docker SDK: offline image, --net=none runs, marks."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from .errors import BadInput, NotReady, WorkbenchError
from .marks import IMAGE, LABEL, LABEL_HOST, LABEL_IMAGE, LABEL_NAME, MARK_VALUE, docker_name

BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "sleep", "ip", "ping", "ifconfig", "cat", "ls", "ps", "route", "wget", "nc", "top")


@dataclass(frozen=True)
class ContainerRow:
    name: str  # our short name (label), e.g. h1-a
    docker_name: str
    host: str
    id: str
    status: str  # running, exited, ...
    pid: int


def client(timeout: int = 30) -> docker.DockerClient:
    url = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        cli = docker.DockerClient(base_url=url, timeout=timeout)  # asks the daemon's API version
    except DockerException as exc:
        raise NotReady(
            f"dockerd is not answering on {url.removeprefix('unix://')}: start it "
            "(dockerd --iptables=false --bridge=none &) and retry"
        ) from exc
    return cli


def busybox_rootfs_tar() -> bytes:
    """A root filesystem holding only a static busybox and its applet links."""
    if not os.path.exists(BUSYBOX) or shutil.which("busybox") is None:
        raise NotReady("busybox is not installed (apt-get install busybox-static)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "proc", "sys", "dev", "etc"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
    return buf.getvalue()


def ensure_image(cli: docker.DockerClient) -> bool:
    """Import the busybox image when missing; True when it was built now.

    The image carries the label containet.image=1, not containet's container mark:
    every container run from it inherits its labels, and one a user runs by hand
    must not look like ours. An image of an older containet that carries the mark
    is imported again (the tag moves; containers running on the old one keep it)."""
    try:
        if LABEL not in (cli.images.get(IMAGE).labels or {}):
            return False
    except ImageNotFound:
        pass
    repo, tag = IMAGE.rsplit(":", 1)
    cli.api.import_image_from_data(
        busybox_rootfs_tar(), repository=repo, tag=tag, changes=[f"LABEL {LABEL_IMAGE}=1"]
    )
    cli.images.get(IMAGE)
    return True


def is_ours(labels: dict[str, str] | None) -> bool:
    """containet's mark on a container: label containet=<mark> *and* a containet.name
    label (the image's labels alone never make a container ours)."""
    labels = labels or {}
    return labels.get(LABEL) == MARK_VALUE and bool(labels.get(LABEL_NAME))


#: the docker filter for our containers (the labels are ANDed)
OURS_FILTER = {"label": [f"{LABEL}={MARK_VALUE}", LABEL_NAME]}


def _row(c: Any) -> ContainerRow:
    labels = c.labels or {}
    return ContainerRow(
        name=labels.get(LABEL_NAME, c.name),
        docker_name=c.name,
        host=labels.get(LABEL_HOST, ""),
        id=c.id,
        status=c.status,
        pid=int(c.attrs.get("State", {}).get("Pid") or 0),
    )


def list_marked(cli: docker.DockerClient) -> list[ContainerRow]:
    rows = [_row(c) for c in cli.containers.list(all=True, filters=OURS_FILTER) if is_ours(c.labels)]
    return sorted(rows, key=lambda r: (r.host, r.name))


def marked_names(cli: docker.DockerClient) -> set[str]:
    """Our containers' short names, in one request (no per-container inspect)."""
    found = cli.api.containers(all=True, filters=OURS_FILTER)
    return {c["Labels"][LABEL_NAME] for c in found if is_ours(c.get("Labels"))}


def find(cli: docker.DockerClient, name: str) -> ContainerRow | None:
    try:
        c = cli.containers.get(docker_name(name))
    except NotFound:
        return None
    if not is_ours(c.labels):
        return None
    return _row(c)


def run(cli: docker.DockerClient, name: str, host: str) -> ContainerRow:
    """`docker run -d --net=none` a marked container; returns it running.

    Through the API the container is also created with networking disabled:
    docker then makes no network sandbox at all (no libnetwork prestart hook,
    which re-executes dockerd for every start), yet the container still gets a
    network namespace of its own holding only `lo` -- which is what --net=none
    gives and all the plumbing needs. It halves the time of a start here.
    """
    api = cli.api
    try:
        created = api.create_container(
            IMAGE,
            ["sleep", "2147483647"],
            name=docker_name(name),
            hostname=name,
            labels={LABEL: MARK_VALUE, LABEL_HOST: host, LABEL_NAME: name},
            network_disabled=True,
            host_config=api.create_host_config(network_mode="none"),
        )
        api.start(created["Id"])
        attrs = api.inspect_container(created["Id"])
    except APIError as exc:
        if exc.status_code == 409:
            raise BadInput(f"a docker container named {docker_name(name)} already exists") from exc
        raise WorkbenchError(f"docker run {name} failed: {exc.explanation}") from exc
    state = attrs.get("State") or {}
    return ContainerRow(
        name=name,
        docker_name=docker_name(name),
        host=host,
        id=attrs["Id"],
        status=str(state.get("Status", "")),
        pid=int(state.get("Pid") or 0),
    )


def remove(cli: docker.DockerClient, name_or_id: str) -> bool:
    try:
        c = cli.containers.get(name_or_id)
    except NotFound:
        return False
    if not is_ours(c.labels):
        raise WorkbenchError(f"container {name_or_id} is not containet's: left alone")
    try:
        c.remove(force=True)
    except NotFound:
        return False
    return True


def find_any(cli: docker.DockerClient, name_or_id: str) -> ContainerRow | None:
    """Any container by docker name or ID, ours or not (hand-built ones too)."""
    try:
        return _row(cli.containers.get(name_or_id))
    except NotFound:
        return None
