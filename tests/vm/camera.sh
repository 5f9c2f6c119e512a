# Runs inside the test VM (busybox sh) with the share at /mnt: kiosk-agent's real V4L2 path
# against the vivid driver. Results land in /mnt as JSON for tests/vm.rs to check.
set -x
L="/mnt/lib/ld-linux-x86-64.so.2 --library-path /mnt/lib"
A="$L /mnt/kiosk-agent"
# Scratch files live in a fresh directory of the guest's tmpfs.
W=$(mktemp -d)
cat /sys/class/video4linux/video*/name

# 1. Devices and formats.
$A camera list > /mnt/list.json || exit 11

# 2. Streaming vivid's own test pattern (no face in it).
$A camera test --device /dev/video0 --frames 30 --seconds 120 --save /mnt/pattern.png > /mnt/pattern.json || exit 12

# 3. Unplug and plug back in while streaming: the platform device is unbound and bound again.
$A camera test --device /dev/video0 --frames 60 --seconds 240 > /mnt/replug.json &
pid=$!
sleep 6
echo vivid.0 > /sys/bus/platform/drivers/vivid/unbind || exit 13
ls /dev/video* 2>&1
sleep 3
echo vivid.0 > /sys/bus/platform/drivers/vivid/bind || exit 14
wait $pid || exit 15

# 4. A stalled stream: vivid drops every buffer for a while (no frame arrives), then recovers.
#    The stall outlasts the frames already queued (4 buffers at about a second of analysis each
#    on this emulated CPU), so the agent's frame timeout is what notices it.
cat > $W/stall.toml <<TOML
state_dir = "$W/stall"
[smileid]
partner_id = "1"
environment = "https://127.0.0.1:9/v1"
api_key_file = "$W/none"
[camera]
device = "/dev/video0"
frame_timeout_ms = 1000
TOML
$A camera test --config $W/stall.toml --frames 60 --seconds 240 > /mnt/stall.json &
pid=$!
sleep 5
$L /mnt/vivid_feed set "Percentage of Dropped Buffers" 100 || exit 19
sleep 12
$L /mnt/vivid_feed set "Percentage of Dropped Buffers" 0 || exit 19
wait $pid || exit 20

# 5. A person in front of the camera: the synthetic face fed into vivid's output, looped back
#    to its capture input; first the gates, then a whole Biometric KYC capture into the queue.
$L /mnt/vivid_feed 400 > /mnt/feed.log 2>&1 &
feed=$!
sleep 5
$A camera test --device /dev/video0 --frames 20 --seconds 120 --save /mnt/face.png > /mnt/face.json || exit 16
mkdir -p $W/state /mnt/screens
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
backend = "png"
out_dir = "/mnt/screens"
width = 320
height = 240
# The feed is the portrait slid about: the weaker motion check an operator may choose (active
# liveness through vivid is the deployed kiosk's test, where the feed's head follows the screen).
[capture]
liveness = "motion"
TOML
printf '{"country":"NG","id_type":"NIN_V2","id_number":"12345678901","first_name":"Ada","entered":true}' > $W/id.json
$A capture --config $W/kiosk.toml --user-id vm-user --consent-given --id-info $W/id.json > /mnt/capture.out || exit 17
$A queue --config $W/kiosk.toml show "$(cat /mnt/capture.out)" > /mnt/job.json || exit 18
# The doctor's camera check on the configured device (other checks fail in the VM: no network).
$A doctor --config $W/kiosk.toml --json > /mnt/doctor.json
kill $feed
exit 0
