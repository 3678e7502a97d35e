"""A throwaway one-node Slurm cluster for the tests: Debian's munged, slurmctld and slurmd in a temporary folder,
with accounting (slurmdbd on a MariaDB server of its own) so that ``sacct`` answers.

Everything the daemons write (munge key, sockets, database, state, spool, logs, pids) lives in that folder; they
listen on free loopback ports other than Slurm's and MariaDB's defaults, name this host as their one node with its
real CPUs and memory (``slurmd -C``), and are stopped at the end of the session. Clients find the cluster through
``SLURM_CONF``, which :meth:`Cluster.env` sets (slurmdbd finds its slurmdbd.conf beside it). Without the packages
(or root: slurmd starts jobs as their users) the tests that need it skip, except under
``CIFARLAB_REQUIRE_SERVICES=1``, where they fail (``skips.py`` decides).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from skips import skip_or_fail

SERVERS = ("munged", "mariadb-install-db", "mariadbd", "slurmdbd", "slurmctld", "slurmd")  # what starts the cluster
CLIENTS = ("sbatch", "scontrol", "squeue", "scancel", "sinfo", "srun", "sacct")
PACKAGES = "slurmctld slurmd slurm-client slurmdbd mariadb-server munge"
DB_USER, DB_PASSWORD = "slurm", "s3cret-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Cluster:
    """munged, MariaDB, slurmdbd, slurmctld and slurmd of one node (this host), configured and run from a temporary
    folder."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="cifarlab-slurm-"))
        self.root.chmod(0o755)  # slurmd's job steps and the jobs' own users read the config from here
        self.conf = self.root / "slurm.conf"
        self.db_port, self.dbd_port = _free_port(), _free_port()
        self.socket = self.root / "munge.socket"
        self.node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True).stdout.strip()
        self._procs: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        """The environment of a Slurm client (sbatch, squeue, ...) talking to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _hardware(self) -> str:
        """This node's CPUs and memory as slurmd itself sees them (``NodeName=... CPUs=2 ... RealMemory=...``)."""
        line = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
        return " ".join(w for w in line.split() if not w.startswith("NodeName="))

    def write_config(self) -> None:
        """slurm.conf: this host as the one node, on loopback and two free ports, with requeueing allowed and
        accounting by slurmdbd; slurmdbd.conf: slurmdbd on a third port, storing into the MariaDB server."""
        r = self.root
        for sub in ("state", "spool"):
            (r / sub).mkdir()
        dbd_conf = r / "slurmdbd.conf"
        dbd_conf.touch(0o600)  # slurmdbd refuses a config others can read: it holds the database's password
        dbd_conf.write_text(f"""\
AuthType=auth/munge
AuthInfo=socket={self.socket}
DbdHost={self.node}
DbdAddr=127.0.0.1
DbdPort={self.dbd_port}
SlurmUser=root
PidFile={r}/slurmdbd.pid
LogFile={r}/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser={DB_USER}
StoragePass={DB_PASSWORD}
StorageLoc=slurm_acct_db
""")
        self.conf.write_text(f"""\
ClusterName=cifarlab-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket},cred_expire=10
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self.dbd_port}
AccountingStoragePass={self.socket}
JobCompType=jobcomp/filetxt
JobCompLoc={r}/jobcomp.log
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobRequeue=1
ReturnToService=2
MinJobAge=300
KillWait=10
SlurmdTimeout=30
NodeName={self.node} NodeAddr=127.0.0.1 {self._hardware()} State=UNKNOWN
PartitionName=test Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def _start(self, *command: str) -> None:
        log = open(self.root / f"{Path(command[0]).name}.out", "ab")  # noqa: SIM115  (the daemon keeps it)
        self._procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                            env=self.env(), start_new_session=True))

    def start(self) -> None:
        """munged with its own key, then the database, slurmdbd, slurmctld and slurmd in the foreground; wait until
        the node is idle."""
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._start("munged", "--foreground", "--force", f"--socket={self.socket}", f"--key-file={key}",
                    f"--pid-file={self.root}/munged.pid", f"--log-file={self.root}/munged.log",
                    f"--seed-file={self.root}/munged.seed")
        self._wait(lambda: self.socket.exists(), "munged")
        self._start_database()
        self._start("slurmdbd", "-D")
        # slurmctld registers the cluster with slurmdbd as it starts: slurmdbd must be listening by then
        self._wait(lambda: _listening(self.dbd_port), "slurmdbd")
        self._start("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._wait(lambda: self.scontrol("ping").returncode == 0 and "UP" in self.scontrol("ping").stdout,
                   "slurmctld")
        self._start("slurmd", "-D", "-f", str(self.conf), "-N", self.node)
        self._wait(lambda: self.node_state() in ("idle", "mixed", "allocated"), "slurmd")

    def _start_database(self) -> None:
        """A MariaDB server on loopback with the database slurmdbd fills and the user it connects as."""
        db = self.root / "db"
        grants = self.root / "grants.sql"
        grants.write_text(f"CREATE DATABASE slurm_acct_db;\n"
                          f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}';\n"
                          f"GRANT ALL ON slurm_acct_db.* TO '{DB_USER}'@'127.0.0.1';\n")
        # --no-defaults: not Debian's /etc/mysql, whose socket and data directory are the system server's;
        # --user=root: mariadbd runs as root only when told to
        common = ["--no-defaults", f"--datadir={db}", "--user=root", "--skip-name-resolve"]
        done = subprocess.run(["mariadb-install-db", *common, "--skip-test-db"], capture_output=True, text=True,
                              cwd=self.root, timeout=120)
        if done.returncode:
            raise RuntimeError(f"mariadb-install-db failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        # --init-file, not the installer's --extra-file: the installer runs without the grant tables CREATE USER needs
        self._start("mariadbd", *common, f"--init-file={grants}", "--bind-address=127.0.0.1", f"--port={self.db_port}",
                    f"--socket={self.root}/mariadb.sock", f"--pid-file={self.root}/mariadb.pid",
                    f"--log-error={self.root}/mariadb.log")
        self._wait(lambda: _listening(self.db_port), "mariadbd")

    def _wait(self, ready, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            for p in self._procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited with {p.returncode} while starting {what}:\n"
                                       f"{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready within {seconds:.0f} s:\n{self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        """The tail of every daemon's log, for a failure's message."""
        parts = []
        for name in ("munged.log", "mariadb.log", "slurmdbd.log", "slurmctld.log", "slurmd.log", "munged.out",
                     "mariadbd.out", "slurmdbd.out", "slurmctld.out", "slurmd.out"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(parts)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        done = subprocess.run(command, capture_output=True, text=True, env=self.env(), timeout=60)
        if check and done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def scontrol(self, *args: str) -> subprocess.CompletedProcess:
        """``scontrol ARGS``, unchecked."""
        return self.run("scontrol", *args, check=False)

    def node_state(self) -> str:
        """The node's state as sinfo says it (``idle``, ``mixed``, ``down*``, ...)."""
        return self.run("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.strip()

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` of one job (or array task, ``1234_0``), as KEY: value; empty once it is gone."""
        done = self.scontrol("show", "job", "-o", job_id)
        if done.returncode:
            return {}
        fields = {}
        for word in done.stdout.split():
            key, _, value = word.partition("=")
            fields.setdefault(key, value)
        return fields

    def accounting(self, job_id: str, fields: str) -> list[list[str]]:
        """``sacct``'s records of a job's allocations (an array's: every task's), a requeued task's earlier runs
        included, each as the values of ``fields`` (sacct's ``--format``, such as ``JobID,State``)."""
        out = self.run("sacct", "-j", job_id, "--allocations", "--duplicates", "--parsable2", "--noheader",
                       f"--format={fields}").stdout
        return [line.split("|") for line in out.splitlines()]

    def stop(self) -> None:
        """Cancel every job, stop the daemons (SIGTERM, then SIGKILL), kill what they left and delete the folder."""
        self.run("scancel", "--full", "--signal=KILL", "--user", str(os.geteuid()), check=False)
        deadline = time.monotonic() + 20
        while self.run("squeue", "-h", check=False).stdout.strip() and time.monotonic() < deadline:
            time.sleep(0.5)
        for p in reversed(self._procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self._procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for pid in self._strays():
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    def _strays(self) -> list[int]:
        """Processes still carrying this cluster's SLURM_CONF (job steps a dying slurmd did not reap)."""
        mark = f"SLURM_CONF={self.conf}".encode()
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if int(proc.name) != os.getpid() and mark in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except (OSError, ValueError):  # gone meanwhile, or not ours to read
                continue
        return found


@pytest.fixture(scope="session")
def slurm_cluster():
    """The session's one-node Slurm cluster (skip, or fail in CI, when Slurm, munge, MariaDB or root is missing)."""
    missing = [tool for tool in SERVERS + CLIENTS if shutil.which(tool, path=os.environ.get("PATH", "") +
                                                                  ":/usr/sbin:/sbin") is None]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not found (apt-get install {PACKAGES}): Slurm tests skipped")
    if os.geteuid() != 0:
        skip_or_fail("the one-node Slurm cluster runs slurmd, which starts jobs, as root: Slurm tests skipped")
    cluster = Cluster()
    try:
        cluster.write_config()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
