#!/bin/bash
# Single-node Son of Grid Engine 8.1.9 (Debian 12), no systemd. Run as root. Idempotent.
# all.q has 8 slots and no load threshold, so several 1-core worker jobs run at
# once on a 2-core machine, however busy it is.
set -euo pipefail
W=${W:-/tmp/rask-infra/sge}; mkdir -p $W
H=$(hostname)
if qstat -f 2>/dev/null | grep -qE "^all.q@$H "; then exit 0; fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q gridengine-master gridengine-exec gridengine-client >/dev/null
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
C=$SGE_ROOT/$SGE_CELL/common
echo "$H" > $C/act_qmaster                       # noninteractive debconf leaves it empty
# $H and localhost both map to 127.0.0.1; make SGE treat them as one host:
echo "$H localhost $(awk '$1=="127.0.0.1"{for(i=2;i<=NF;i++) printf "%s ",$i}' /etc/hosts | tr ' ' '\n' | grep -vxE "$H|localhost" | tr '\n' ' ')" > $C/host_aliases
install -d -o sgeadmin -g sgeadmin -m 755 /var/run/gridengine
SGE_MASTER_PIDFILE=/var/run/gridengine/qmaster.pid /usr/sbin/sge_qmaster   # daemonizes
for i in $(seq 50); do qconf -sh >/dev/null 2>&1 && break; sleep 0.2; done
qconf -as "$H" >/dev/null
# qconf -m* detects edits by mtime (1 s resolution): the editor must sleep 1 first
ed() { printf '#!/bin/sh\nsleep 1\nsed -i %s "$1"\n' "$1" > $W/ed.sh; chmod +x $W/ed.sh; EDITOR=$W/ed.sh "${@:2}" >/dev/null; }
ed "-e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' -e 's/flush_time=00:00:15/flush_time=00:00:01/'" qconf -mconf global     # allow root jobs
ed "-e 's/^schedule_interval .*/schedule_interval 0:0:1/' -e 's/^flush_submit_sec .*/flush_submit_sec 1/' -e 's/^flush_finish_sec .*/flush_finish_sec 1/'" qconf -msconf
/usr/sbin/sge_execd   # start AFTER min_uid change (execd caches conf); auto-registers as exec host
qconf -sq all.q >/dev/null 2>&1 || ed "-e 's/^hostlist .*/hostlist $H/' -e 's/^slots .*/slots 8/' -e 's/^pe_list .*/pe_list NONE/' -e 's|^shell .*|shell /bin/sh|'" qconf -aq all.q
# 8 slots, and no load threshold: a busy 2-core machine (a build beside the tests)
# would otherwise put the queue in alarm state and stop dispatching jobs.
qconf -mattr queue slots 8 all.q >/dev/null
qconf -rattr queue load_thresholds NONE all.q >/dev/null
for i in $(seq 100); do qstat -f | grep -qE "^all.q@$H +BI +0/0/[0-9]+ +[0-9.]+ +lx-amd64 *$" && exit 0; sleep 0.2; done
qstat -f; exit 1
