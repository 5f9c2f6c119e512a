# Runs inside the test VM (busybox sh) with the share at /mnt: the framebuffer backend on the
# bochs DRM driver's /dev/fb0, and a GPIO button on gpio-sim answering a session's consent.
set -x
L="/mnt/lib/ld-linux-x86-64.so.2 --library-path /mnt/lib"
A="$L /mnt/kiosk-agent"
# Scratch files live in a fresh directory of the guest's tmpfs.
W=$(mktemp -d)

# 1. Framebuffer: every screen drawn, read back from the device and compared, in two languages.
ls -la /dev/fb0 || exit 21
# No text console drawing into the picture: stop the cursor blink and unbind fbcon (only
# fbcon: the dummy console must stay bound for fbcon to let go).
echo 0 > /sys/class/graphics/fbcon/cursor_blink
fbcon_off() {
  for v in /sys/class/vtconsole/vtcon*; do
    grep -q "frame buffer" $v/name && echo 0 > $v/bind
  done
}
fbcon_off
cat /sys/class/vtconsole/vtcon*/name /sys/class/vtconsole/vtcon*/bind
mkdir -p /mnt/fb-en /mnt/fb-fr
$A display test --device /dev/fb0 --language en --save /mnt/fb-en > /mnt/fb-en.json || exit 22
$A display test --device /dev/fb0 --language fr --save /mnt/fb-fr > /mnt/fb-fr.json || exit 23

# 2. A button on gpio-sim line 3, wired active-low (pull-up idle; pressing pulls it down).
G=/sys/kernel/config/gpio-sim/kiosk
mkdir $G $G/bank0 || exit 24
echo 8 > $G/bank0/num_lines
echo 1 > $G/live || exit 25
chip=$(cat $G/bank0/chip_name); dev=$(cat $G/dev_name)
pull=/sys/devices/platform/$dev/$chip/sim_gpio3/pull
# The person at the button: a short press (yes, keep), or a hold (no, take again).
press() { echo pull-down > $pull; sleep 0.3; echo pull-up > $pull; }
hold() { echo pull-down > $pull; sleep 1.5; echo pull-up > $pull; }
# Waits (up to 2 min) until FILE (the walk-up log by default) has N lines matching PAT.
log_has() { for _ in $(seq 240); do [ "$(grep -c "$2" "${3:-/mnt/walkup.log}")" -ge "$1" ] && return 0; sleep 0.5; done; return 1; }
echo pull-up > $pull || exit 26
echo "$chip" > /mnt/gpiochip

# 3. A session that waits for the button at the consent screen: a face from vivid's loopback,
#    the framebuffer showing the screens, the press answering "I agree".
$L /mnt/vivid_feed 300 > /mnt/feed.log 2>&1 &
feed=$!
mkdir -p $W/state
printf 'not-a-real-key' > $W/api_key
cat > $W/kiosk.toml <<TOML
state_dir = "$W/state"
[smileid]
partner_id = "1"
environment = "https://127.0.0.1:9/v1"
api_key_file = "$W/api_key"
[camera]
source = "v4l2"
device = "/dev/video0"
[display]
backend = "framebuffer"
device = "/dev/fb0"
language = "sw"
# The feed here is the portrait slid about, for the weaker motion check an operator may choose
# (the deployed kiosk's test feeds a head that turns as asked, for active liveness); the walk-up
# below, on the synthetic person, runs active liveness. (Before [input]: the walk-up appends
# input keys.)
[capture]
liveness = "motion"
# An emulated CPU runs the face model about twenty times slower than a Pi.
time_limit_secs = 300
[input]
backend = "gpio"
chip = "/dev/$chip"
line = 3
answer_timeout_secs = 120
TOML
printf '{"country":"NG","id_type":"NIN_V2","id_number":"12345678901","first_name":"Ada","entered":true}' > $W/id.json
sleep 3
$A capture --config $W/kiosk.toml --user-id button-user --id-info $W/id.json > /mnt/capture.out 2> /mnt/capture.err &
cap=$!
log_has 1 "waiting at the consent screen" /mnt/capture.err || exit 27
# The screen is drawn on the display's own thread: give a slow (emulated) machine time.
sleep 4
# The consent screen is up: read it back from the framebuffer for the record.
dd if=/dev/fb0 of=/mnt/consent.raw bs=4096 2>/dev/null
press
echo pressed > /mnt/pressed
wait $cap; echo $? > /mnt/capture.rc
$A queue --config $W/kiosk.toml show "$(cat /mnt/capture.out)" > /mnt/job.json

# The doctor on this configuration: framebuffer and button found.
$A doctor --config $W/kiosk.toml --json > /mnt/doctor.json

# 4. Holding the button at the consent screen declines: nothing is captured.
$A capture --config $W/kiosk.toml --user-id hold-user --id-info $W/id.json > /mnt/hold.out 2> /mnt/hold.err &
cap=$!
log_has 1 "waiting at the consent screen" /mnt/hold.err || exit 28
sleep 1
hold
wait $cap; echo $? > /mnt/hold.rc

# 5. The service: a session the host application starts waits at the consent screen, and the
#    button answers it (no consent through the API).
sed -e "s#$W/state#$W/state-run#" $W/kiosk.toml > $W/run.toml
printf '[api]\nsocket = "%s/control.sock"\n' "$W" >> $W/run.toml
$A run --config $W/run.toml > /mnt/run.log 2>&1 &
run=$!
log_has 1 "running; control API" /mnt/run.log || exit 29
$A session --config $W/run.toml --user-id svc-user --id-info $W/id.json > /mnt/session.out 2> /mnt/session.err &
sess=$!
log_has 1 "is asked for consent" /mnt/run.log || exit 39
sleep 1
press
wait $sess; echo $? > /mnt/session.rc
kill $run
kill $feed
wait $run

# 6. Walk-up: a press at the welcome screen starts a document verification (the synthetic
#    camera shows the card), the button answers consent, and at the review a hold takes the
#    photo again and a press keeps it.
sed -e "s#$W/state#$W/state-walkup#" -e 's/^source = "v4l2"/source = "synthetic"/' -e '/^liveness = "motion"/d' \
  $W/kiosk.toml > $W/walkup.toml
printf 'walk_up = "document"\nwalk_up_country = "NG"\nwalk_up_id_type = "PASSPORT"\nwalk_up_document_back = false\n[api]\nsocket = "%s/walkup.sock"\n' "$W" >> $W/walkup.toml
$A run --config $W/walkup.toml > /mnt/walkup.log 2>&1 &
run=$!
log_has 1 "running; control API" || exit 30
sleep 2
press
log_has 1 "walk-up session started" || exit 31
log_has 1 "is asked for consent" || exit 35
sleep 1
press
log_has 1 "keep the document photo" || exit 32
sleep 1
hold
log_has 2 "keep the document photo" || exit 33
sleep 1
press
log_has 1 "captured and queued" || exit 34
$A jobs --config $W/walkup.toml --json > /mnt/walkup-jobs.json
kill $run
wait $run

# 7. A touch panel and keys: a uinput device (multitouch type B with keys), found by
#    evdev = ["auto"]. At the welcome the right arrow chooses French and a tap on Start begins a
#    walk-up document verification; a tap on "I agree", a tap on "Take again" at the review, and
#    Enter keeps the second photo. The finger aims at the buttons as drawn (uinput_feed lays the
#    screens out with the agent's code at the framebuffer's size).
size=$(cat /sys/class/graphics/fb0/virtual_size)
fbw=${size%,*}; fbh=${size#*,}
mkfifo $W/finger
$L /mnt/uinput_feed "$fbw" "$fbh" < $W/finger > /mnt/touch-feed.log 2>&1 &
feed=$!
exec 7> $W/finger
sleep 1
ls -l /dev/input/ > /mnt/touch-devices.txt
cat > $W/touch.toml <<TOML
state_dir = "$W/state-touch"
[smileid]
partner_id = "1"
environment = "https://127.0.0.1:9/v1"
api_key_file = "$W/api_key"
[camera]
source = "synthetic"
[display]
backend = "framebuffer"
device = "/dev/fb0"
language = "en"
languages = ["fr"]
outcome_secs = 2
[input]
evdev = ["auto"]
walk_up = "document"
walk_up_country = "NG"
walk_up_id_type = "PASSPORT"
walk_up_document_back = false
answer_timeout_secs = 120
[capture]
time_limit_secs = 300
[api]
socket = "$W/touch.sock"
TOML
# Without the finger's FIFO (fd 7): unplugging it below must end its feed.
$A run --config $W/touch.toml 7>&- > /mnt/touch.log 2>&1 &
run=$!
log_has 1 "running; control API" /mnt/touch.log || exit 40
log_has 1 "reading input device" /mnt/touch.log || exit 41
sleep 2
echo "key right" >&7
log_has 1 "language chosen at the kiosk: fr" /mnt/touch.log || exit 42
sleep 1
dd if=/dev/fb0 of=/mnt/touch-idle.raw bs=4096 2>/dev/null
echo "tap idle start fr" >&7
log_has 1 "walk-up session started" /mnt/touch.log || exit 43
log_has 1 "is asked for consent" /mnt/touch.log || exit 48
sleep 1
echo "tap consent yes fr" >&7
log_has 1 "keep the document photo" /mnt/touch.log || exit 44
sleep 1
echo "tap review retake fr" >&7
log_has 1 "asked to take the document photo again" /mnt/touch.log || exit 45
log_has 2 "keep the document photo" /mnt/touch.log || exit 46
sleep 1
echo "key enter" >&7
log_has 1 "captured and queued" /mnt/touch.log || exit 47
$A jobs --config $W/touch.toml --json > /mnt/touch-jobs.json
# 8. The panel unplugged, then another plugged in while the agent runs: the uinput device is
#    destroyed (its feed ends), which the agent notes, and the welcome (in the kiosk's language
#    again after the session) offers the keyboard's Enter instead; a new panel appears under another
#    eventN, evdev = ["auto"] takes it up within the rescan, the welcome offers its Start button
#    again, and a tap on it starts a session.
exec 7>&-
wait $feed
log_has 1 "unplugged?" /mnt/touch.log || exit 49
# The session's outcome (2 s) over, and the welcome redrawn: three looks, a moment apart.
sleep 3
for k in a b c; do sleep 1; dd if=/dev/fb0 of=/mnt/touch-unplugged-$k.raw bs=4096 2>/dev/null; done
mkfifo $W/finger2
$L /mnt/uinput_feed "$fbw" "$fbh" < $W/finger2 > /mnt/touch-feed2.log 2>&1 &
feed=$!
exec 7> $W/finger2
log_has 2 "(a touch panel)" /mnt/touch.log || exit 51
sleep 1
echo "tap idle start en" >&7
log_has 2 "walk-up session started" /mnt/touch.log || exit 52
kill $run
wait $run
exec 7>&-
wait $feed

# 9. The screen's driver loads late: the service starts with no /dev/fb0 (bochs unloaded),
#    answers on its control API (`status` names the missing screen, a session is refused), and
#    once the driver is loaded it draws the welcome on the new /dev/fb0 and reads the touch panel.
unloaded=
for _ in $(seq 10); do /bin/busybox rmmod bochs && { unloaded=1; break; }; sleep 1; done
[ -n "$unloaded" ] || { /bin/busybox lsmod; exit 60; }
for _ in $(seq 20); do [ -e /dev/fb0 ] || break; sleep 0.5; done
[ -e /dev/fb0 ] && exit 61
sed -e "s#$W/state-touch#$W/state-late#" -e "s#$W/touch.sock#$W/late.sock#" $W/touch.toml > $W/late.toml
$A run --config $W/late.toml > /mnt/late.log 2>&1 &
run=$!
log_has 1 "running; control API" /mnt/late.log || exit 62
$A status --config $W/late.toml > /mnt/late-status.txt 2>&1
$A session --config $W/late.toml --user-id late-user --job-type 4 > /mnt/late-session.txt 2>&1 && exit 63
mkfifo $W/finger3
$L /mnt/uinput_feed "$fbw" "$fbh" < $W/finger3 > /mnt/touch-feed3.log 2>&1 &
feed=$!
exec 7> $W/finger3
insmod "$(grep '/bochs.ko' /modules.list)" || exit 64
# The new framebuffer takes the text console again: let it go, as in 1.
fbcon_off
log_has 1 "the display is there now" /mnt/late.log || exit 65
log_has 1 "(a touch panel)" /mnt/late.log || exit 66
sleep 3
dd if=/dev/fb0 of=/mnt/late-idle.raw bs=4096 2>/dev/null

# 10. The screen goes while the service runs, and comes back. (a) Its cable out: /dev/fb0 stays,
#     and the card's connector says disconnected (forced through DRM's sysfs, which reads as a
#     real HDMI unplug does); `status` names the missing screen and a session is refused; plugged
#     in again, the welcome is drawn again over a blanked picture. (b) Its driver unbound (a USB
#     panel unplugged, a driver reloaded): /dev/fb0 goes; bound again, the new /dev/fb0 is opened
#     and the welcome drawn on it, and the touch panel still starts a session (9's tap, below).
con=$(ls -d /sys/class/graphics/fb0/device/drm/card*/card*-* | head -1)
echo off > $con/status || exit 70
log_has 1 "sessions are refused until it is back" /mnt/late.log || exit 71
$A status --config $W/late.toml > /mnt/unplugged-status.txt 2>&1
$A session --config $W/late.toml --user-id gone-user --job-type 4 > /mnt/unplugged-session.txt 2>&1 && exit 72
$A doctor --config $W/late.toml > /mnt/unplugged-doctor.txt 2>&1
sleep 1
dd if=/dev/zero of=/dev/fb0 bs=4096 2>/dev/null
echo detect > $con/status
log_has 2 "the screen is there" /mnt/late.log || exit 73
sleep 3
dd if=/dev/fb0 of=/mnt/replugged-idle.raw bs=4096 2>/dev/null
pci=$(basename "$(readlink -f /sys/class/graphics/fb0/device)")
drv=$(basename "$(readlink -f /sys/class/graphics/fb0/device/driver)")
echo $pci > /sys/bus/pci/drivers/$drv/unbind || exit 74
log_has 2 "sessions are refused until it is back" /mnt/late.log || exit 75
$A status --config $W/late.toml > /mnt/unbound-status.txt 2>&1
echo $pci > /sys/bus/pci/drivers/$drv/bind || exit 76
fbcon_off
log_has 3 "the screen is there" /mnt/late.log || exit 77
log_has 2 "the display is there now" /mnt/late.log || exit 78
sleep 3
dd if=/dev/fb0 of=/mnt/rebound-idle.raw bs=4096 2>/dev/null
echo "tap idle start en" >&7
log_has 1 "walk-up session started" /mnt/late.log || exit 67
kill $run
exec 7>&-
wait $feed
exit 0
