#!/usr/bin/env bash
# A small x86_64 VM with real kernel drivers, for the device tests: Debian's own kernel (vivid
# for V4L2, bochs for a framebuffer), gpio-sim built from Debian's kernel source (Debian's
# kernels leave it out), a busybox initramfs, a host directory shared over 9p. Nothing is
# downloaded but Debian packages. veth and sch_netem are there for the field tests (this host's
# own kernel has no netem). Software emulation (TCG): this machine's /dev/kvm hangs a stock kernel.
# The deployed-kiosk test boots the same kernel into a Debian rootfs made by debootstrap, with
# systemd as PID 1 (the initramfs loads the modules, then hands over to the disk).
#
#   bash scripts/vm.sh kit                 kernel + initramfs into target/vm (cached)
#   bash scripts/vm.sh run DIR PAYLOAD     boot, run PAYLOAD (a shell script, copied into DIR)
#                                          with DIR mounted at /mnt, leave its exit code in DIR/rc
#                                          (VM_CPUS, VM_TIMEOUT: CPUs and time limit, 1 and 600 s)
#   bash scripts/vm.sh rootfs              Debian bookworm rootfs image with systemd (cached)
#   bash scripts/vm.sh boot DIR PAYLOAD    like run, on a copy of that image with systemd as
#                                          PID 1: PAYLOAD runs as a unit once the system is up
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

VM=target/vm
MODULES="virtio_pci 9pnet_virtio 9p configfs vivid bochs veth sch_netem virtio_blk ext4 uinput evdev"
KIT_VERSION=5

kit() {
  # Tests boot VMs in parallel: one of them builds the kit, the others wait for it.
  mkdir -p "$VM"
  exec 9>"$VM.lock"
  flock 9
  apt_install qemu-system-x86 busybox-static cpio kmod
  if [ -f "$VM/initrd.gz" ] && [ "$(cat "$VM/kit.version" 2>/dev/null)" = "$KIT_VERSION" ]; then flock -u 9; return; fi
  mkdir -p "$VM/dl"
  local pkg kver
  # The versioned image package Debian's linux-image-amd64 points at today.
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  kver=${pkg#linux-image-}
  # Headers and source of the same kernel, for the gpio-sim module.
  apt_install "linux-headers-$kver" linux-source-6.1 make gcc
  echo "== kernel $kver"
  (cd "$VM/dl" && { ls "$pkg"_*.deb >/dev/null 2>&1 || apt-get download "$pkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$pkg"; }; })
  rm -rf "$VM/root" "$VM/initramfs"
  dpkg-deb -x "$VM"/dl/"$pkg"_*.deb "$VM/root"
  depmod -b "$VM/root" "$kver"
  cp "$VM/root/boot/vmlinuz-$kver" "$VM/vmlinuz"
  local ir="$VM/initramfs"
  mkdir -p "$ir"/{bin,dev,proc,sys,mnt,tmp,etc,lib/modules}
  cp /bin/busybox "$ir/bin/busybox"
  for a in sh mount umount insmod mkdir rmdir cat echo sleep ls poweroff sync ln chmod kill grep test [ tr cut wc head tail find dd date cp rm awk sed expr seq mv mktemp mkfifo printf switch_root; do ln -sf busybox "$ir/bin/$a"; done
  # Only the modules the tests need, in dependency order, loaded by plain insmod.
  : >"$ir/modules.list"
  for m in $MODULES; do
    modprobe -d "$VM/root" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}' | while read -r ko; do
      local rel=${ko#"$VM/root/"}
      rel=${rel#"$(pwd)/$VM/root/"}
      grep -qx "/$rel" "$ir/modules.list" && continue
      mkdir -p "$ir/$(dirname "$rel")"
      cp "$ko" "$ir/$rel"
      echo "/$rel" >>"$ir/modules.list"
    done
  done
  # gpio-sim: its own source and the kernel's irq_sim.c linked into one module; the one call of
  # the unexported irq_to_desc() replaced by generic_handle_irq(), which is exported.
  local gs="$VM/gpio-sim"
  rm -rf "$gs" && mkdir -p "$gs"
  tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$gs" --strip-components=3 \
    linux-source-6.1/drivers/gpio/gpio-sim.c linux-source-6.1/drivers/gpio/gpiolib.h
  tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$gs" --strip-components=3 linux-source-6.1/kernel/irq/irq_sim.c
  sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq(irqnum);/' "$gs/irq_sim.c"
  grep -q 'generic_handle_irq(irqnum);' "$gs/irq_sim.c"
  printf 'obj-m := gpio-sim-kiosk.o\ngpio-sim-kiosk-objs := gpio-sim.o irq_sim.o\n' >"$gs/Makefile"
  make -s -C "/usr/src/linux-headers-$kver" M="$(pwd)/$gs" modules
  cp "$gs/gpio-sim-kiosk.ko" "$ir/gpio-sim-kiosk.ko"
  echo "/gpio-sim-kiosk.ko" >>"$ir/modules.list"
  cat >"$ir/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
while read -r ko; do insmod "$ko" || echo "insmod $ko failed"; done < /modules.list
if grep -q kiosk.root=vda /proc/cmdline; then
  # The deployed kiosk: the modules stay loaded, systemd takes over from the disk.
  mkdir -p /newroot
  mount -t ext4 /dev/vda /newroot || { echo "cannot mount the rootfs"; poweroff -f; }
  umount /tmp; umount /sys; umount /proc
  exec switch_root /newroot /lib/systemd/systemd
fi
mount -t configfs none /sys/kernel/config || echo "configfs mount failed"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /mnt || echo "9p mount failed"
echo "== payload start"
sh /mnt/payload.sh > /mnt/payload.log 2>&1
echo $? > /mnt/rc
sync
echo "== payload done rc=$(cat /mnt/rc)"
poweroff -f
EOF
  chmod +x "$ir/init"
  (cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1 >"../initrd.gz")
  echo "$KIT_VERSION" >"$VM/kit.version"
  echo "== initramfs $(du -h "$VM/initrd.gz" | cut -f1)"
  flock -u 9
}

# Copies a dynamically linked binary and the shared libraries it needs into DIR (run it as
# DIR/lib/ld-linux-x86-64.so.2 --library-path DIR/lib DIR/BIN).
stage_binary() {
  local bin=$1 dir=$2
  mkdir -p "$dir/lib"
  cp "$bin" "$dir/"
  ldd "$bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r so; do
    [ -f "$so" ] && cp -L "$so" "$dir/lib/"
  done
}

run() {
  local dir=$1 payload=$2
  kit
  mkdir -p "$dir"
  cp "$payload" "$dir/payload.sh"
  rm -f "$dir/rc"
  local start=$SECONDS
  timeout "${VM_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -M q35 -m 768 -smp "${VM_CPUS:-1}" -nographic -no-reboot \
    -kernel "$VM/vmlinuz" -initrd "$VM/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 vivid.n_devs=1" \
    -virtfs "local,path=$dir,mount_tag=host,security_model=none" >"$dir/console.log" 2>&1 || true
  echo "== VM ran $((SECONDS - start)) s; payload log:"
  cat "$dir/payload.log" 2>/dev/null || true
  [ -f "$dir/rc" ] || { echo "the VM did not finish its payload; console:"; tail -40 "$dir/console.log"; return 1; }
  return "$(cat "$dir/rc")"
}

# A Debian bookworm rootfs with systemd as an ext4 image: a kiosk's system minus the hardware,
# with only what the package itself needs installed (adduser) and the test's own unit.
ROOTFS_VERSION=1
rootfs() {
  mkdir -p "$VM"
  exec 8>"$VM.rootfs.lock"
  flock 8
  if [ -f "$VM/rootfs.img" ] && [ "$(cat "$VM/rootfs.version" 2>/dev/null)" = "$ROOTFS_VERSION" ]; then flock -u 8; return; fi
  apt_install debootstrap e2fsprogs
  local r="$VM/rootfs" start=$SECONDS
  rm -rf "$r" "$VM/rootfs.img"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,udev,kmod,adduser,procps,passwd \
    bookworm "$r" http://deb.debian.org/debian >"$VM/debootstrap.log" 2>&1 ||
    { tail -20 "$VM/debootstrap.log"; return 1; }
  echo "== debootstrap $((SECONDS - start)) s"
  echo kiosk >"$r/etc/hostname"
  : >"$r/etc/machine-id"
  cp tests/vm/kiosk-test.service "$r/etc/systemd/system/"
  mkdir -p "$r/etc/systemd/system/multi-user.target.wants"
  ln -sf /etc/systemd/system/kiosk-test.service "$r/etc/systemd/system/multi-user.target.wants/"
  # No login prompts or periodic jobs competing for the emulated CPUs.
  for u in getty@tty1.service serial-getty@ttyS0.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer fstrim.timer systemd-timesyncd.service; do
    ln -sf /dev/null "$r/etc/systemd/system/$u"
  done
  rm -f "$r"/var/cache/apt/archives/*.deb
  mkfs.ext4 -q -F -L kiosk -d "$r" "$VM/rootfs.img" 2G
  rm -rf "$r"
  echo "$ROOTFS_VERSION" >"$VM/rootfs.version"
  echo "== rootfs image $(du -h "$VM/rootfs.img" | cut -f1) in $((SECONDS - start)) s"
  flock -u 8
}

boot() {
  local dir=$1 payload=$2
  kit
  rootfs
  mkdir -p "$dir"
  cp "$payload" "$dir/payload.sh"
  rm -f "$dir/rc"
  cp --sparse=always "$VM/rootfs.img" "$dir/.disk.img"
  local start=$SECONDS
  timeout "${VM_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -M q35 -m 1024 -smp "${VM_CPUS:-2}" -nographic -no-reboot \
    -kernel "$VM/vmlinuz" -initrd "$VM/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 vivid.n_devs=1 kiosk.root=vda" \
    -drive "file=$dir/.disk.img,if=virtio,format=raw" \
    -virtfs "local,path=$dir,mount_tag=host,security_model=none" >"$dir/console.log" 2>&1 || true
  rm -f "$dir/.disk.img"
  echo "== VM ran $((SECONDS - start)) s; payload log:"
  cat "$dir/payload.log" 2>/dev/null || true
  [ -f "$dir/rc" ] || { echo "the VM did not finish its payload; console:"; tail -60 "$dir/console.log"; return 1; }
  return "$(cat "$dir/rc")"
}

case "${1:-}" in
  kit) kit ;;
  rootfs) rootfs ;;
  boot) boot "$2" "$3" ;;
  stage) stage_binary "$2" "$3" ;;
  run) run "$2" "$3" ;;
  *) echo "usage: $0 kit | stage BIN DIR | run DIR PAYLOAD | rootfs | boot DIR PAYLOAD" >&2; exit 2 ;;
esac
