# The deployed kiosk (tests/vm.rs, deployed_kiosk): runs as a unit inside the VM's Debian rootfs
# with systemd as PID 1 and the share at /mnt. The package is installed with apt, configured
# only where the README tells an operator to edit, started with systemctl; a host application
# in the API group drives two sessions, a person presses the button and turns their head as the
# screen asks (active liveness, as packaged), an operator looks on.
# Every step is printed, so a failure names the step that broke.
set -u
step() { echo "== step: $*"; echo "$*" > /mnt/step; }
fail() { echo "FAILED at step \"$(cat /mnt/step)\": $*"; journalctl -u kiosk-agent --no-pager -n 40; exit 1; }
# Until CMD succeeds, for at most N seconds.
until_ok() { local n=$1; shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 1; done; return 1; }
# The peer and the feed are the test's, not the kiosk's: dev builds staged with their libraries.
L="/mnt/lib/ld-linux-x86-64.so.2 --library-path /mnt/lib"
# The test's own scratch files, in the guest.
W=$(mktemp -d)
fb() { dd if=/dev/fb0 of="/mnt/fb-$1.raw" bs=65536 2>/dev/null; }

step "the kiosk's hardware: vivid camera, bochs framebuffer, a button on gpio-sim line 17"
until_ok 30 test -e /dev/video0 -a -e /dev/fb0 || fail "no /dev/video0 or /dev/fb0"
# No text console drawing into the picture (fbcon unbound, the dummy console stays).
echo 0 > /sys/class/graphics/fbcon/cursor_blink
for v in /sys/class/vtconsole/vtcon*; do grep -q "frame buffer" "$v/name" && echo 0 > "$v/bind"; done
cat /sys/class/graphics/fb0/virtual_size /sys/class/graphics/fb0/bits_per_pixel /sys/class/graphics/fb0/stride > /mnt/fb.txt
G=/sys/kernel/config/gpio-sim/kiosk
mkdir $G $G/bank0 && echo 32 > $G/bank0/num_lines && echo 1 > $G/live || fail "gpio-sim"
chip=$(cat $G/bank0/chip_name); dev=$(cat $G/dev_name)
pull=/sys/devices/platform/$dev/$chip/sim_gpio17/pull
echo pull-up > "$pull" || fail "gpio-sim pull"
echo "$chip" > /mnt/gpiochip
press() { echo pull-down > "$pull"; sleep 0.3; echo pull-up > "$pull"; }

step "a Smile ID sandbox on loopback, answering 2 s late (a slow link)"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > $W/api_key
mkdir -p /mnt/sandbox
$L /mnt/kiosk-agent sandbox --listen 127.0.0.1:8443 --partner-id 085 --api-key-file $W/api_key \
  --state-dir /mnt/sandbox --latency-ms 2000 > /mnt/sandbox.log 2>&1 &
until_ok 60 test -s /mnt/sandbox/ca.pem || fail "the sandbox did not start"
# The person at the kiosk: a 3-D head fed into vivid's loopback, turning as $W/screen says.
$L /mnt/vivid_feed 900 --follow $W/screen > /mnt/feed.log 2>&1 &

step "apt install ./kiosk-agent_*_amd64.deb"
cp /mnt/kiosk-agent_*_amd64.deb $W/
(cd $W && apt-get install -y ./kiosk-agent_*_amd64.deb) > /mnt/apt.log 2>&1 || { tail -20 /mnt/apt.log; fail "apt install"; }
ls -l /dev/gpiochip* > /mnt/gpiochip.ls

step "as installed (no partner id yet) the service refuses to start, and is not restarted"
systemctl start kiosk-agent && fail "the unconfigured service started"
sleep 7
systemctl show kiosk-agent -p ExecMainStatus -p NRestarts > /mnt/unconfigured.txt
grep -qx ExecMainStatus=78 /mnt/unconfigured.txt && grep -qx NRestarts=0 /mnt/unconfigured.txt ||
  fail "not refused once with exit 78: $(cat /mnt/unconfigured.txt)"
kiosk-agent sandbox --help > /dev/null 2>&1 && fail "the packaged binary carries the sandbox"
kiosk-agent demo --help > /dev/null 2>&1 && fail "the packaged binary carries the demo"

step "the operator's edits (README): the API key, partner id and name, environment, the sandbox's CA"
install -m 0600 $W/api_key /etc/kiosk-agent/credentials/api_key
install -m 0644 /mnt/sandbox/ca.pem /etc/kiosk-agent/extra-ca.pem
sed -i -e 's/^partner_id = ""/partner_id = "085"/' -e 's/^# partner_name = .*/partner_name = "Kiosk Test Bank"/' \
  -e 's#^environment = "production"#environment = "https://127.0.0.1:8443/v1"#' \
  -e 's@^\# extra_ca_file = .*@extra_ca_file = "/etc/kiosk-agent/extra-ca.pem"@' /etc/kiosk-agent/kiosk.toml
[ "$chip" = gpiochip0 ] || sed -i "s#^chip = \"/dev/gpiochip0\"#chip = \"/dev/$chip\"#" /etc/kiosk-agent/kiosk.toml
cp /etc/kiosk-agent/kiosk.toml /mnt/kiosk.toml
kiosk-agent check-config > /mnt/check-config.txt 2>&1 || fail "check-config: $(cat /mnt/check-config.txt)"

step "systemctl start kiosk-agent"
systemctl start kiosk-agent || fail "systemctl start"
until_ok 60 test -S /run/kiosk-agent/control.sock || fail "no control socket"
link_up() { kiosk-agent status --json 2>/dev/null | grep -q '"link": *"up"'; }
until_ok 90 link_up || fail "the link did not come up: $(kiosk-agent status 2>&1)"

step "the host application, a member of the API group, and the welcome screen"
useradd --create-home --groups kiosk hostapp || fail "useradd"
sleep 2
fb idle

# One session as the host application starts it; the person answers consent with the button.
# The capture's end is left to the caller (wait $s).
session() {
  local n=$1
  runuser -u hostapp -- kiosk-agent session --job-type 4 \
    --user-id "host-user-$n" > "/mnt/session$n.out" 2> "/mnt/session$n.err" &
  local s=$!
  until_ok 60 grep -q awaiting_consent "/mnt/session$n.err" || fail "no consent screen: $(cat /mnt/session$n.err)"
  sleep 2
  fb "consent$n"
  press
  until_ok 60 grep -q capturing "/mnt/session$n.err" || fail "capture did not start: $(cat /mnt/session$n.err)"
  # The person does what the screen asks: the host application's view of the session (its last
  # line ends with the guidance shown, turn_left for one) is what the head in the feed follows.
  (while kill -0 $s 2> /dev/null; do
    tail -n 1 "/mnt/session$n.err" > $W/screen.new && mv $W/screen.new $W/screen
    sleep 0.2
  done) &
  local person=$!
  # An emulated CPU draws a 1280x800 preview slowly: three looks, a moment apart.
  for k in a b c; do sleep 0.7; fb "capture$n$k"; done
  wait $s || fail "session $n: $(cat /mnt/session$n.err)"
  kill $person 2> /dev/null; wait $person
  rm -f $W/screen
}

step "session 1: consent by the button, capture, outcome, welcome"
session 1
sleep 2
fb outcome1
# The outcome stays display.outcome_secs (8 s by default), then the welcome is back.
sleep 9
fb idle1
step "the operator beside the service: status, jobs, doctor"
kiosk-agent status > /mnt/status.txt 2>&1 || fail "status: $(cat /mnt/status.txt)"
kiosk-agent jobs > /mnt/jobs.txt 2>&1 || fail "jobs: $(cat /mnt/jobs.txt)"
kiosk-agent doctor --config /etc/kiosk-agent/kiosk.toml --json > /mnt/doctor.json 2> /mnt/doctor.err
echo $? > /mnt/doctor.rc

step "session 2"
session 2
job2=$(sed -n 's/.*"job_id": *"\([^"]*\)".*/\1/p' /mnt/session2.out | head -1)
[ -n "$job2" ] || fail "no job id in $(cat /mnt/session2.out)"

step "systemctl restart kiosk-agent in the middle of job 2's upload"
# Smile ID has been asked for job 2's upload URL, and answers 2 s late: the upload is under way.
asked() { grep -qs "$job2" /mnt/sandbox/jobs/*/prep_upload.json; }
for _ in $(seq 600); do asked && break; sleep 0.2; done
asked || fail "job 2's upload never started"
systemctl restart kiosk-agent || fail "systemctl restart"
grep -h '"uploads"' /mnt/sandbox/jobs/*/record.json > /mnt/uploads-at-restart.txt
until_ok 60 test -S /run/kiosk-agent/control.sock || fail "no control socket after the restart"
until_ok 90 link_up || fail "the link did not come up after the restart"
sleep 2
fb restarted

step "both jobs delivered, the queue empty"
done_uploading() { kiosk-agent status --json 2>/dev/null | grep -q '"pending": *0'; }
until_ok 180 done_uploading || fail "jobs still pending: $(kiosk-agent status 2>&1)"
kiosk-agent status --json > /mnt/status-end.json 2>&1

step "the operator's log"
journalctl -u kiosk-agent -o json --no-pager > /mnt/journal.json
journalctl -u kiosk-agent --no-pager > /mnt/journal.txt

step "keys and secrets: the keys outside the state dir and encrypted, no key in files or logs, no core dumps"
for k in device_key bundle_key; do
  f=/etc/kiosk-agent/keys/$k
  [ -f "$f" ] || fail "the package made no $f"
  # A bare key is 32 bytes; systemd-creds' encrypted form is larger and not the key itself.
  [ "$(stat -c %s "$f")" -gt 32 ] || fail "$f is not encrypted"
done
find /var/lib/kiosk-agent -type f ! -name keys.check \( -name '*key*' -o -size 32c \) > /mnt/state-keys.txt
[ -s /mnt/state-keys.txt ] && fail "key-like files in the state dir: $(cat /mnt/state-keys.txt)"
key=$(cat $W/api_key)
grep -rlsF "$key" /var/lib/kiosk-agent /run/kiosk-agent /mnt/journal.txt /mnt/journal.json > /mnt/key-found.txt
[ -s /mnt/key-found.txt ] && fail "the API key is in $(cat /mnt/key-found.txt)"
pid=$(systemctl show -p MainPID --value kiosk-agent)
grep -Eq '^Max core file size +0 +0 ' /proc/$pid/limits || fail "core dumps are not off: $(grep core /proc/$pid/limits)"
# A process that made itself non-dumpable has its /proc entries owned by root.
[ "$(stat -c %u /proc/$pid/environ)" = 0 ] || fail "the agent is dumpable"
systemctl stop kiosk-agent
echo "== all steps passed"
