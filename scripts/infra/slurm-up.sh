#!/bin/bash
# Single-node SLURM 22.05 on Debian 12, no systemd. Run as root. Idempotent.
# The node claims 8 CPUs (config_overrides) so several 1-core worker jobs run at
# once on a 2-core machine; the tests' workers are mostly idle.
set -euo pipefail
W=${W:-/tmp/rask-infra/slurm}; mkdir -p $W
H=$(hostname)   # must resolve (here /etc/hosts: 127.0.0.1 vm)
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
# munge (postinst already created /etc/munge/munge.key)
install -d -o munge -g munge -m 755 /run/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged   # daemonizes; pid in /run/munge/munged.pid
install -d -o slurm -g slurm /var/spool/slurmctld /var/log/slurm; mkdir -p /var/spool/slurmd
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=rask
SlurmctldHost=$H
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
AccountingStorageType=accounting_storage/none
SchedulerParameters=sched_interval=1
MinJobAge=300
SlurmdParameters=config_overrides
KillWait=5
NodeName=$H NodeAddr=127.0.0.1 CPUs=8 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=tiny Nodes=ALL MaxCPUsPerNode=1 MaxTime=00:05:00 State=UP
CONF
# (tiny: jobs asking more of it are accepted and never start, for the launcher's tests)
if sinfo -h -o %T 2>/dev/null | grep -qx idle; then scontrol reconfigure; exit 0; fi
slurmctld -D >$W/slurmctld.out 2>&1 & echo $! >$W/slurmctld.pid
slurmd -D    >$W/slurmd.out    2>&1 & echo $! >$W/slurmd.pid
for i in $(seq 100); do sinfo -h -o %T 2>/dev/null | grep -qx idle && exit 0; sleep 0.2; done
echo "slurm not idle" >&2; exit 1
