"""A two-node Docker Swarm on one machine, for `make swarm-test`: the machine's engine is the
manager; a second engine runs in a network namespace of its own (its own hostname too), joined as a
worker over a veth pair. Images travel through a local registry (Debian's docker-registry), one
process on each side's loopback sharing one storage folder, so both engines pull
127.0.0.1:PORT/canary/...:local (loopback registries need no TLS on either engine).

Everything is made here and removed in `close()`, which runs whatever failed before it: the stack,
the swarm (both sides), the second engine, the registries, the veth, the namespace, the volumes,
images and files it made. Every wait is bounded. Nothing listens beyond loopback, the veth and
the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from support.compose import wait_for
from support.procs import free_port

# The veth's /30 and the swarm's own address pool: private ranges Docker's defaults do not use
# (bridges take 172.17-31.x and 192.168.x; a swarm's default pool is 10.0.0.0/8 from 10.0.0.0).
HOST_ADDR, NODE_ADDR = "10.213.77.1", "10.213.77.2"
SWARM_POOL = "10.214.0.0/16"
NODE_BIP = "10.215.0.1/24"
PROJECT_IMAGES = ("mlflow", "model-server", "router", "nginx", "controller", "loadgen")


def sh(*cmd, check=True, timeout=120, env=None, input=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], check=check, timeout=timeout, capture_output=True, text=True, env=env, input=input
    )


def wait_until(predicate, timeout: float, what: str, interval: float = 1.0):
    """compose.wait_for, where any error of a probe (docker CLI, socket, HTTP) means "not yet"."""
    return wait_for(predicate, timeout, what, interval, errors=(Exception,))


class TwoNodeSwarm:
    def __init__(self, log_dir: Path):
        tag = uuid.uuid4().hex[:6]
        self.tag = tag
        self.ns = f"canary-sw-{tag}"
        self.veth_host, self.veth_node = f"cswh{tag}", f"cswn{tag}"
        self.node_name = f"canary-sw-node2-{tag}"
        self.sock = f"/var/run/docker-{self.ns}.sock"
        self.data_root = Path(f"/var/lib/docker-{self.ns}")
        self.exec_root = Path(f"/var/run/docker-{self.ns}")
        self.work = Path(tempfile.mkdtemp(prefix=f"canary-swarm-{tag}-"))
        self.log_dir = log_dir
        self.registry_port = free_port()
        self.prefix = f"127.0.0.1:{self.registry_port}/"
        self.procs: list[subprocess.Popen] = []
        self.dockerd: subprocess.Popen | None = None
        self.made: list[str] = []  # what was set up, for the report and the teardown
        self.stack: str | None = None
        self.had_gwbridge = sh("docker", "network", "inspect", "docker_gwbridge", check=False).returncode == 0

    # -- the two engines ------------------------------------------------------------------
    def docker(self, *args, node: int = 1, **kw) -> subprocess.CompletedProcess:
        host = [] if node == 1 else ["-H", f"unix://{self.sock}"]
        return sh("docker", *host, *args, **kw)

    def start(self) -> None:
        if sh("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() != "inactive":
            raise RuntimeError("this engine is already in a swarm: not touching it")
        for net in ("10.213.77.0/30", SWARM_POOL, NODE_BIP):
            if net.split("/")[0].rsplit(".", 1)[0] in sh("ip", "-4", "addr").stdout:
                raise RuntimeError(f"{net} is in use on this machine")
        self._network()
        self._engine()
        self._registry()
        self._swarm()

    def _network(self) -> None:
        sh("ip", "netns", "add", self.ns)
        self.made.append("netns")
        sh("ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_node)
        self.made.append("veth")
        sh("ip", "link", "set", self.veth_node, "netns", self.ns)
        sh("ip", "addr", "add", f"{HOST_ADDR}/30", "dev", self.veth_host)
        sh("ip", "link", "set", self.veth_host, "up")
        nsexec = ["nsenter", f"--net=/var/run/netns/{self.ns}"]
        sh(*nsexec, "ip", "addr", "add", f"{NODE_ADDR}/30", "dev", self.veth_node)
        sh(*nsexec, "ip", "link", "set", self.veth_node, "up")
        sh(*nsexec, "ip", "link", "set", "lo", "up")
        sh(*nsexec, "ping", "-c", "1", "-W", "2", HOST_ADDR, check=False)

    def _engine(self) -> None:
        config = self.work / "daemon.json"
        config.write_text(json.dumps({}))
        log = open(self.log_dir / "dockerd-node2.log", "w")  # noqa: SIM115 (closed with the process)
        # nsenter --net, not `ip netns exec` (which remounts /sys and hides the cgroups);
        # unshare --uts: the node's own hostname, so `docker node ls` tells the two apart.
        cmd = [
            "nsenter",
            f"--net=/var/run/netns/{self.ns}",
            "unshare",
            "--uts",
            "sh",
            "-c",
            f'hostname {self.node_name} && exec "$@"',
            "sh",
            "dockerd",
            f"--config-file={config}",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile=/var/run/docker-{self.ns}.pid",
            f"-H=unix://{self.sock}",
            f"--bip={NODE_BIP}",
            "--iptables=true",
        ]
        self.dockerd = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.made.append("engine")
        wait_until(lambda: self.docker("info", node=2, check=False).returncode == 0, 60, "the second engine")

    def _registry(self) -> None:
        storage = self.work / "registry"
        storage.mkdir()
        for side in ("host", "node"):
            cfg = self.work / f"registry-{side}.yml"
            cfg.write_text(
                "version: 0.1\n"
                f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
                f"http:\n  addr: 127.0.0.1:{self.registry_port}\n"
            )
            cmd = ["docker-registry", "serve", str(cfg)]
            if side == "node":
                cmd = ["nsenter", f"--net=/var/run/netns/{self.ns}", *cmd]
            log = open(self.log_dir / f"registry-{side}.log", "w")  # noqa: SIM115
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self.made.append("registry")
        wait_until(
            lambda: sh("curl", "-fsS", f"http://127.0.0.1:{self.registry_port}/v2/", check=False).returncode == 0,
            30,
            "the registry",
        )

    def push_images(self) -> dict:
        """Tag and push the project images; the worker pulls them at deploy."""
        took = {}
        for name in PROJECT_IMAGES:
            started = time.monotonic()
            ref = f"{self.prefix}canary/{name}:local"
            sh("docker", "tag", f"canary/{name}:local", ref)
            sh("docker", "push", ref, timeout=600)
            took[name] = round(time.monotonic() - started, 1)
        self.made.append("images")
        return took

    def _swarm(self) -> None:
        sh(
            "docker",
            "swarm",
            "init",
            "--advertise-addr",
            HOST_ADDR,
            "--listen-addr",
            f"{HOST_ADDR}:2377",
            "--default-addr-pool",
            SWARM_POOL,
        )
        self.made.append("swarm")
        token = sh("docker", "swarm", "join-token", "-q", "worker").stdout.strip()
        self.docker("swarm", "join", "--token", token, "--advertise-addr", NODE_ADDR, f"{HOST_ADDR}:2377", node=2)
        wait_until(lambda: len(self.nodes(ready=True)) == 2, 60, "both nodes ready")

    def nodes(self, ready: bool = False) -> dict[str, str]:
        """node id -> hostname."""
        out = sh("docker", "node", "ls", "--format", "{{.ID}} {{.Hostname}} {{.Status}}").stdout.split("\n")
        return {f[0]: f[1] for f in (line.split() for line in out if line) if not ready or f[2] == "Ready"}

    # -- the stack ------------------------------------------------------------------------
    def deploy(self, stack_file: Path, name: str, env: dict) -> None:
        self.stack = name
        full_env = dict(os.environ, **env, CANARY_IMAGE_PREFIX=self.prefix)
        sh("docker", "stack", "deploy", "--resolve-image", "never", "-c", stack_file, name, env=full_env, timeout=300)

    def service(self, short: str) -> str:
        return f"{self.stack}_{short}"

    def tasks(self, short: str | None = None) -> list[dict]:
        """Running tasks (of one service, or of the stack): service, node, container, addresses."""
        names = [self.service(short)] if short else self.services()
        out = []
        for svc in names:
            ids = sh("docker", "service", "ps", "-q", "--filter", "desired-state=running", svc).stdout.split()
            if not ids:
                continue
            for task in json.loads(sh("docker", "inspect", *ids).stdout):
                if task["Status"]["State"] != "running":
                    continue
                addrs = [a.split("/")[0] for n in task.get("NetworksAttachments") or [] for a in n.get("Addresses", [])]
                out.append(
                    {
                        "service": svc.removeprefix(f"{self.stack}_"),
                        "node": task["NodeID"],
                        "container": task["Status"].get("ContainerStatus", {}).get("ContainerID"),
                        "addresses": addrs,
                    }
                )
        return out

    def services(self) -> list[str]:
        return sh("docker", "stack", "services", "--format", "{{.Name}}", self.stack).stdout.split()

    def converged(self) -> bool:
        """Every service at its replica count (jobs: completed)."""
        rows = sh("docker", "stack", "services", "--format", "{{.Mode}}|{{.Replicas}}", self.stack).stdout
        for line in rows.splitlines():
            mode, replicas = line.split("|")
            if "job" in mode:  # "replicated job", "0/1 (1/1 completed)"
                continue
            have, want = replicas.split()[0].split("/")
            if have != want:
                return False
        return bool(rows.strip())

    def replicas(self) -> dict[str, int]:
        """Desired replicas of each replicated service (short name -> count)."""
        specs = json.loads(sh("docker", "service", "inspect", *self.services()).stdout)
        return {
            s["Spec"]["Name"].removeprefix(f"{self.stack}_"): s["Spec"]["Mode"]["Replicated"]["Replicas"]
            for s in specs
            if "Replicated" in s["Spec"]["Mode"]
        }

    def all_running_on(self, node_id: str) -> bool:
        """Every replica of every replicated service running (healthy) on `node_id`, none elsewhere."""
        tasks = self.tasks()
        if any(t["node"] != node_id for t in tasks):
            return False
        running = Counter(t["service"] for t in tasks)
        return all(running[name] == want for name, want in self.replicas().items())

    def exec_in(self, task: dict, *cmd, **kw) -> subprocess.CompletedProcess:
        node = 1 if task["node"] == self.manager_id() else 2
        return self.docker("exec", task["container"], *cmd, node=node, **kw)

    def manager_id(self) -> str:
        return sh("docker", "info", "--format", "{{.Swarm.NodeID}}").stdout.strip()

    def save_logs(self) -> None:
        if not self.stack:
            return
        with open(self.log_dir / "services.log", "w") as f:
            for svc in self.services():
                out = sh("docker", "service", "logs", "--timestamps", "--no-task-ids", svc, check=False, timeout=60)
                f.write(f"==== {svc}\n{out.stdout}{out.stderr}\n")
            ps = sh("docker", "stack", "ps", "--no-trunc", self.stack, check=False)
            f.write(f"==== docker stack ps\n{ps.stdout}{ps.stderr}\n")

    # -- teardown: every step runs, whatever failed before ---------------------------------
    def close(self) -> list[str]:
        problems: list[str] = []

        def step(what, fn):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 (teardown goes on)
                problems.append(f"{what}: {exc!r}")

        if self.stack:
            step("logs", self.save_logs)
            step("stack rm", lambda: sh("docker", "stack", "rm", self.stack, check=False, timeout=120))
            step(
                "stack gone",
                lambda: wait_until(
                    lambda: (
                        not sh(
                            "docker", "ps", "-q", "--filter", f"label=com.docker.stack.namespace={self.stack}"
                        ).stdout.strip()
                    ),
                    60,
                    "the stack's containers to stop",
                ),
            )
        if "swarm" in self.made:
            if "engine" in self.made:
                step("node2 leave", lambda: self.docker("swarm", "leave", "--force", node=2, check=False, timeout=60))
            step("manager leave", lambda: sh("docker", "swarm", "leave", "--force", timeout=120))
        if self.stack:
            for vol in ("mlflow-data", "prometheus-data", "alertmanager-data"):
                # The task's container may still be going away: retry until the volume is gone.
                step(f"volume {vol}", lambda v=vol: self._remove_volume(f"{self.stack}_{v}"))
        if not self.had_gwbridge:
            step("gwbridge", lambda: sh("docker", "network", "rm", "docker_gwbridge", check=False))
        if "images" in self.made:
            for name in PROJECT_IMAGES:
                step(f"untag {name}", lambda n=name: sh("docker", "rmi", f"{self.prefix}canary/{n}:local", check=False))
        if self.dockerd is not None:
            step("stop node2 engine", self._stop_engine)
        for proc in self.procs:
            step("stop registry", lambda p=proc: _stop(p, 10))
        step("unmount", self._unmount)
        if "veth" in self.made:
            step("veth", lambda: sh("ip", "link", "del", self.veth_host, check=False))
        if "netns" in self.made:
            step("netns", lambda: sh("ip", "netns", "del", self.ns))
        step(
            "files", lambda: [shutil.rmtree(p, ignore_errors=True) for p in (self.data_root, self.exec_root, self.work)]
        )
        step("sock", lambda: Path(self.sock).unlink(missing_ok=True))
        return problems

    def _remove_volume(self, name: str) -> None:
        def gone() -> bool:
            sh("docker", "volume", "rm", "-f", name, check=False)
            return sh("docker", "volume", "inspect", name, check=False).returncode != 0

        wait_until(gone, 90, f"volume {name} removed", interval=2)

    def _stop_engine(self) -> None:
        # Leftover containers of node 2 first (the engine stops them too, this is quicker).
        ids = self.docker("ps", "-aq", node=2, check=False).stdout.split()
        if ids:
            self.docker("rm", "-f", *ids, node=2, check=False, timeout=120)
        _stop(self.dockerd, 60)

    def _unmount(self) -> None:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for m in sorted(mounts, key=len, reverse=True):
            if m.startswith((str(self.data_root), str(self.exec_root))):
                sh("umount", "-l", m, check=False)


def _stop(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
