# Output commit against a capture: reads the primary's checkpoint records
# (`understudy events --epochs GUEST`: epoch, pause began, ack arrived, in
# Unix seconds) and then `tcpdump -tt -n -S` lines of one TCP connection
# between the client CLIENT and the guest GUEST:PORT, captured on the
# client's side. A segment from the guest acknowledging client byte X was
# sent after the guest received that byte, so after the client first sent
# it (at s); it therefore belongs to an epoch whose pause began after s, and
# must not appear before the ack of the first such epoch. Prints each
# violation and a summary; exits 1 on a violation or if fewer than MIN
# segments could be checked.
#   awk -v guest=10.99.0.2.80 -v min=20 -f check_output_commit.awk epochs.txt capture.txt
FNR == NR { paused[++n] = $2; acked[n] = $3; next }
$2 != "IP" { next }
{
  src = $3; dst = $5; sub(/:$/, "", dst); t = $1
  seq_end = ""; ack = ""
  for (i = 6; i <= NF; i++) {
    if ($i == "seq") { split($(i + 1), r, /[:,]/); if (r[2] != "") seq_end = r[2] }
    if ($i == "ack") { ack = $(i + 1); sub(/,$/, "", ack) }
  }
}
dst == guest && seq_end != "" && !(seq_end in first_sent) { first_sent[seq_end] = t }
src == guest && ack != "" && (ack in first_sent) {
  s = first_sent[ack]
  k = 0
  for (j = 1; j <= n; j++) if (paused[j] > s) { k = j; break }
  if (k == 0) { unknown++; next } # the capture outlasted the records
  checked++
  margin = t - acked[k]
  if (margin < 0) {
    bad++
    printf "VIOLATION: %s left at %s, %.6f s before the ack of the epoch it belongs to (client byte %s sent at %s)\n", src, t, -margin, ack, s
  } else if (checked == 1 || margin < least) least = margin
}
END {
  printf "checked %d guest segments against %d checkpoint records: %d violations, %d beyond the records; least margin after the ack %.6f s\n", checked, n, bad, unknown, least
  exit (bad > 0 || checked < min) ? 1 : 0
}
