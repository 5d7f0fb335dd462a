"""How much of the CPUs other processes take while a benchmark runs, from /proc (Linux).

A 2-thread BLAS call stalls for a scheduler slice whenever another process holds
a core (here a 64x784 product went from 0.2 ms to 30 ms), so a timing taken while
this share is well above 0 does not measure the code. This process's own threads
(BLAS and OpenMP workers still spinning) are left out.
"""


def busy_ticks():
    """(clock ticks all CPUs spent busy outside this process, all ticks) so far; None where /proc is unreadable."""
    try:
        with open("/proc/stat") as f:
            system = [int(t) for t in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    idle = system[3] + system[4]  # idle + iowait
    return sum(system) - idle - int(own[11]) - int(own[12]), sum(system)  # minus own utime + stime


def others_share(before, after):
    """The fraction of all CPUs' time other processes used between two ``busy_ticks()``, or None."""
    if before is None or after is None:
        return None
    return max(0, after[0] - before[0]) / max(1, after[1] - before[1])
