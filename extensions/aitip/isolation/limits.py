"""A sandboxed kernel's limits, set from inside it before it drops to its owner (who can then only lower them):
memory (address space), CPU time, and the cores its threads may run on. The job's wall-clock timeout is the
executor's."""

from __future__ import annotations


def limits_code(*, memory_mb: int | None, cpu_seconds: int | None, cpus: int | None) -> str:
    """Python source for the kernel's set-up (run as the platform, before the drop)."""
    code = "import os as _aitip_os, resource as _aitip_rs\n"
    if memory_mb:
        size = int(memory_mb) * 1024 * 1024
        code += f"_aitip_rs.setrlimit(_aitip_rs.RLIMIT_AS, ({size}, {size}))\n"
    if cpu_seconds:
        # The soft limit sends SIGXCPU (the kernel dies with it); the hard one, a little later, SIGKILL.
        code += f"_aitip_rs.setrlimit(_aitip_rs.RLIMIT_CPU, ({int(cpu_seconds)}, {int(cpu_seconds) + 5}))\n"
    if cpus:
        code += (f"_aitip_cores = set(sorted(_aitip_os.sched_getaffinity(0))[:{int(cpus)}])\n"
                 "for _aitip_task in _aitip_os.listdir('/proc/self/task'):\n"
                 "    try:\n        _aitip_os.sched_setaffinity(int(_aitip_task), _aitip_cores)\n"
                 "    except ProcessLookupError:\n        pass\n"
                 f"_aitip_os.environ.update(OMP_NUM_THREADS='{int(cpus)}', OPENBLAS_NUM_THREADS='{int(cpus)}', "
                 f"MKL_NUM_THREADS='{int(cpus)}')\n")
    return code + "del _aitip_os, _aitip_rs\n"
