# Shared by scripts/kvm-in-qemu and scripts/xen-in-qemu (sourced, not run):
# the throw-away VM's kernel, its 9p initramfs and the watch on its pulse.

# The newest kernel in /boot: the VM's kernel (or Xen's Dom0 kernel).
vm_kernel_version() {
  local k
  k=$(ls /boot 2>/dev/null | sed -n 's/^vmlinuz-//p' | sort -V | tail -1)
  [ -n "$k" ] || { echo "${0##*/}: no kernel in /boot (install linux-image-amd64)" >&2; return 2; }
  echo "$k"
}

vm_check_tools() {
  command -v qemu-system-x86_64 >/dev/null || { echo "${0##*/}: qemu-system-x86_64 missing (install qemu-system-x86)" >&2; return 2; }
  command -v busybox >/dev/null || { echo "${0##*/}: busybox missing (install busybox-static)" >&2; return 2; }
}

# An initramfs tree in DIR: busybox and the modules that mount the host over
# 9p (loaded in the order listed in DIR/lib/modules/order). The caller adds
# DIR/init.
vm_initramfs_base() {
  local root=$1 kver=$2 m f
  mkdir -p "$root"/{bin,dev,proc,sys,mnt,lib/modules}
  cp "$(command -v busybox)" "$root/bin/busybox"
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
           netfs fscache 9pnet 9pnet_virtio 9p; do
    f=$(modinfo -k "$kver" -n "$m" 2>/dev/null) || continue
    case "$f" in (builtin*|"") continue ;; esac
    case "$f" in
      *.zst) zstd -dqc "$f" > "$root/lib/modules/$m.ko" ;;
      *.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
      *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
    echo "$m" >> "$root/lib/modules/order"
  done
}

vm_pack_initramfs() {
  (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) > "$2"
}

# Ends QEMU (pid $1) when file $2, where the VM writes a pulse every 10 s,
# has not grown for $3 seconds. $4 names the script in the message.
vm_watch_pulse() {
  local qemu=$1 pulse=$2 limit=$3 me=$4 last=-1 size quiet=0
  while kill -0 "$qemu" 2>/dev/null; do
    sleep 5
    size=$(stat -c %s "$pulse" 2>/dev/null || echo 0)
    if [ "$size" != "$last" ]; then last=$size; quiet=0; continue; fi
    quiet=$((quiet + 5))
    if [ "$quiet" -ge "$limit" ]; then
      echo "$me: the VM has been frozen for ${limit}s (no pulse); ending it" >&2
      kill "$qemu" 2>/dev/null; kill -CONT "$qemu" 2>/dev/null
      return
    fi
  done
}
