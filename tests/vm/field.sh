# Runs inside the test VM (busybox sh) with the share at /mnt: the agent and the sandbox in two
# network namespaces joined by a veth pair shaped with tc netem. /mnt/field.env says what to run:
#   MODE=bench PROFILES="name:rate:one_way_delay_ms:loss_pct ..."   drain the queue once per profile
#   MODE=soak  PROFILES="name:..." UP=20 DOWN=40 KILL_MIN=30 KILL_MAX=90 LIMIT=780
#              drain it through a link that is up UP s and down DOWN s (netem loss 100 %) while
#              the agent is SIGKILLed when the first job reaches the sandbox, then every
#              KILL_MIN..KILL_MAX s, for at most LIMIT s.
# Both ends' netem qdiscs get the profile, so the delay is one way and the loss is per direction.
# Results: /mnt/out/<profile>/{result.env,records.txt,queue.json,agent.log}.
set -x
. /mnt/field.env
L="/mnt/lib/ld-linux-x86-64.so.2 --library-path /mnt/lib"
A="$L /mnt/kiosk-agent"
IP="$L /mnt/ip"
TC="$L /mnt/tc"
mkdir -p /run/netns /var/run/netns /mnt/out

$IP netns add kiosk || exit 11
$IP netns add cloud || exit 11
$IP link add k0 netns kiosk type veth peer name c0 netns cloud || exit 12
$IP -n kiosk addr add 10.77.0.2/24 dev k0
$IP -n cloud addr add 10.77.0.1/24 dev c0
for ns in kiosk cloud; do $IP -n $ns link set lo up; done
$IP -n kiosk link set k0 up
$IP -n cloud link set c0 up

# shape RATE DELAY_MS LOSS_PCT
shape() {
  $TC -n kiosk qdisc replace dev k0 root netem rate "$1" delay "$2ms" loss "$3%" limit 10000 || exit 13
  $TC -n cloud qdisc replace dev c0 root netem rate "$1" delay "$2ms" loss "$3%" limit 10000 || exit 13
}

now_cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }
counter() { $IP netns exec kiosk cat "/sys/class/net/k0/statistics/$1"; }

start_sandbox() {
  rm -f "$1/sb/ca.pem"
  $IP netns exec cloud $A sandbox --listen 10.77.0.1:8443 --partner-id 085 --api-key-file /mnt/api_key \
    --state-dir "$1/sb" 2>"$1/sandbox.log" &
  SB=$!
  n=0
  while ! [ -f "$1/sb/ca.pem" ]; do
    n=$((n + 1)); [ $n -gt 600 ] && exit 14
    sleep 0.1
  done
}

collect() {
  out=/mnt/out/$1
  mkdir -p "$out"
  zips=0
  for r in "$2"/sb/jobs/*/record.json; do
    [ -f "$r" ] || continue
    tr -d ' \n' < "$r"; echo
    z="${r%/record.json}/selfie.zip"
    [ -f "$z" ] && zips=$((zips + $(wc -c < "$z")))
  done > "$out/records.txt"
  cp "$2/sb/stats.json" "$out/stats.json" 2>/dev/null
  $IP netns exec kiosk $A queue ls --json --config "$2/kiosk.toml" > "$out/queue.json" 2>"$out/queue.err"
  cp "$2/agent.log" "$2/sandbox.log" "$out/" 2>/dev/null
}

prepare() {
  W=/tmp/$1
  rm -rf "$W"
  mkdir -p "$W"
  cp -a /mnt/state "$W/state"
  sed "s#@W@#$W#g" /mnt/kiosk.toml > "$W/kiosk.toml"
}

for p in $PROFILES; do
  name=${p%%:*}; rest=${p#*:}
  rate=${rest%%:*}; rest=${rest#*:}
  delay=${rest%%:*}; loss=${rest#*:}
  prepare "$name"
  start_sandbox "$W"
  shape "$rate" "$delay" "$loss"
  tx0=$(counter tx_bytes); rx0=$(counter rx_bytes)
  t0=$(now_cs)
  kills=0
  if [ "$MODE" = soak ]; then
    # The link: up UP s, down DOWN s, until this profile's run ends.
    (
      while true; do
        sleep "$UP"
        $TC -n kiosk qdisc change dev k0 root netem rate "$rate" delay "${delay}ms" loss 100% limit 10000
        $TC -n cloud qdisc change dev c0 root netem rate "$rate" delay "${delay}ms" loss 100% limit 10000
        sleep "$DOWN"
        shape "$rate" "$delay" "$loss"
      done
    ) &
    FLAP=$!
    done_ok=0
    set +x  # the watch loop below would flood the log
    while [ $(( ($(now_cs) - t0) / 100 )) -lt "$LIMIT" ]; do
      $IP netns exec kiosk $A run --exit-when-idle --config "$W/kiosk.toml" 2>>"$W/agent.log" &
      AG=$!
      life=$((KILL_MIN + RANDOM % (KILL_MAX - KILL_MIN + 1)))
      end=$(( $(now_cs) + life * 100 ))
      why="after $life s"
      while kill -0 $AG 2>/dev/null && [ "$(now_cs)" -lt $end ]; do
        # The first kill comes as the first job reaches the sandbox, so a fast drain that would
        # outrun KILL_MIN is still cut mid-stream at least once.
        if [ $kills = 0 ] && [ -n "$(ls "$W/sb/jobs" 2>/dev/null)" ]; then why="as the first job landed"; break; fi
        sleep 0.2
      done
      if kill -0 $AG 2>/dev/null; then
        kill -9 $AG; wait $AG; kills=$((kills + 1))
        echo "== killed $why" | tee -a "$W/agent.log"
      else
        wait $AG && { done_ok=1; break; }
      fi
    done
    set -x
    kill $FLAP
    shape "$rate" "$delay" "$loss"
  else
    $IP netns exec kiosk $A run --exit-when-idle --config "$W/kiosk.toml" 2>"$W/agent.log"
    done_ok=$(( $? == 0 ))
  fi
  t1=$(now_cs)
  tx1=$(counter tx_bytes); rx1=$(counter rx_bytes)
  kill $SB; wait $SB
  collect "$name" "$W"
  cat > "/mnt/out/$name/result.env" <<EOF
profile=$name
rate=$rate
delay_ms=$delay
loss_pct=$loss
finished=$done_ok
centisecs=$((t1 - t0))
tx_bytes=$((tx1 - tx0))
rx_bytes=$((rx1 - rx0))
kills=$kills
zip_bytes=$zips
EOF
  rm -rf "$W"
done
exit 0
