"""Small real inputs for the batch tests (cut from ../shared/data) and a real Ray cluster on 127.0.0.1.

The cluster is ``ray start --head --block`` in its own process group, with a random authentication token and a
temp folder of its own; it is stopped through that process group, so no other Ray on the machine is touched.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2

REPO_ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")


def cut_clip(source: Path, target: Path, frames: int, width: int, first: int = 0) -> Path:
    """``frames`` frames of ``source`` from ``first``, scaled to ``width`` pixels across, as an mp4."""
    capture = cv2.VideoCapture(str(source))
    capture.set(cv2.CAP_PROP_POS_FRAMES, first)
    writer = None
    for _ in range(frames):
        ok, frame = capture.read()
        assert ok, f"cannot read {source}"
        frame = cv2.resize(frame, (width, round(frame.shape[0] * width / frame.shape[1])), interpolation=cv2.INTER_AREA)
        if writer is None:
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), capture.get(cv2.CAP_PROP_FPS),
                                     (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    writer.release()
    capture.release()
    return target


def joined_clip(parts: list[tuple[Path, int, int]], target: Path, width: int) -> Path:
    """One mp4 of the frames ``(source, first, frames)`` of each part in turn, all scaled to ``width`` pixels
    across and to the first part's height: a clip with a shot cut where each part begins."""
    writer, size = None, None
    for source, first, frames in parts:
        capture = cv2.VideoCapture(str(source))
        capture.set(cv2.CAP_PROP_POS_FRAMES, first)
        for _ in range(frames):
            ok, frame = capture.read()
            assert ok, f"cannot read {source}"
            if size is None:
                size = (width, round(frame.shape[0] * width / frame.shape[1]))
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
            writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        capture.release()
    writer.release()
    return target


def small_picture(source: Path, target: Path, width: int = 480) -> Path:
    image = cv2.imread(str(source))
    cv2.imwrite(str(target), cv2.resize(image, (width, round(image.shape[0] * width / image.shape[1]))))
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalCluster:
    address: str
    env: dict[str, str]  # for the processes that connect to it (token, PYTHONPATH, marker)
    marker: str  # in the environment of every process of this cluster
    process: subprocess.Popen

    def worker_pids(self, title: str) -> list[int]:
        """Processes of this cluster whose title starts with ``title`` (e.g. ``ray::troupe-clip``)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(title.encode()) and f"TROUPE_TEST_CLUSTER={self.marker}".encode() in environ:
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        """SIGTERM to the cluster's process group, SIGKILL to whatever of it is left after 3 s."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + (3 if sig == signal.SIGTERM else 10)
            while time.monotonic() < deadline:
                self.process.poll()  # reap the leader
                if not _group_alive(self.process.pid):
                    return
                time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def start_cluster(temp_dir: Path, num_cpus: int = 2) -> LocalCluster:
    port = free_port()
    marker = secrets.token_hex(8)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               PYTHONPATH=str(REPO_ROOT), TROUPE_TEST_CLUSTER=marker, RAY_USAGE_STATS_ENABLED="0")
    process = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
         "--num-cpus", str(num_cpus), "--num-gpus", "0", "--temp-dir", str(temp_dir),
         "--include-dashboard=False", "--disable-usage-stats"],
        env=env, cwd=REPO_ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cluster = LocalCluster(f"127.0.0.1:{port}", env, marker, process)
    deadline = time.monotonic() + 60
    while not _listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            cluster.stop()
            raise RuntimeError(f"ray start did not come up (exit {process.poll()})")
        time.sleep(0.5)
    return cluster


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_batch_command(args: list[str], env: dict[str, str], timeout: float = 300,
                      quiet: bool = True) -> subprocess.CompletedProcess:
    quiet_flag = ["--quiet"] if quiet else []
    return subprocess.run([sys.executable, "-m", "backend", "batch", *args, *quiet_flag], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
