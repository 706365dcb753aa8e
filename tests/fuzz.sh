#!/usr/bin/env bash
# Fuzzes the catalog parsers and what strangers on the network send with cargo-fuzz (libFuzzer).
#   bash tests/fuzz.sh [seconds-per-target]        (default 30)
#   FUZZ_TARGETS="metadata envelope" bash tests/fuzz.sh 60   (a subset)
#
# Targets (fuzz/fuzz_targets/):
#   manifest_toml  Manifest::from_toml_str on arbitrary UTF-8; a manifest that parses must come
#                  back equal from its JSON form (to_json_value -> from_json_value).
#   metadata       SignedMetadata::<Root|Timestamp|Snapshot|Targets>::from_slice; what parses is
#                  verified against its own keys (verify_role), delegations are resolved.
#   envelope       SignedEnvelope::from_slice then verify.
#   manifest_json  Manifest::from_json_value on arbitrary JSON (the part of envelope verification
#                  after the signature check, which the envelope target rarely reaches); round trip.
#   canonical      serde_json Value -> canonical::to_canonical (and idempotence of the encoding).
#   nostr_event    one event as a relay hands it: event::event_from_json, then every check a node
#                  runs (event::parse, Discovery::check against a node holding the publisher's
#                  verified binding, accept with the envelope, TrustInputs::add, label_of); an
#                  accepted event comes back equal from its JSON.
#   nostr_tags     event templates (JSON lines) signed by fixed Nostr keys, a `did-sig` of "sign"
#                  by the DID, so the tag parsers, bindings, parking, replays and revocations are
#                  reached past the signatures; parsed announcements keep their limits.
#   meta_frame     the /archy/meta/1 framing (archy_net::meta::decode_request, decode_status,
#                  decode_length, ResponseHead::encode): what decodes is a valid name, lengths
#                  over the limit are refused, what the server writes reads back.
#   swarm_announcement  a gossip message as a swarm announcement (archy_net::announce::decode)
#                  taken into a provider table (swarm::ProviderTable::accept): what decodes keeps
#                  the limits, a repeat is a replay, the table stays bounded; announcements built
#                  from the input and signed decode back, and any flipped bit is refused.
#   tlog_note      a gossiped log checkpoint and a log proof answer (catalog::tlog): bounds hold,
#                  only the log key's own checkpoints open, a proof moves a node only to the
#                  signed checkpoint it carries.
#   submission     POST /v1/submissions through the origin's real router (a temporary origin
#                  with one publisher): fuzzer-chosen content type, body and chunking, the
#                  metadata part optionally signed again by the publisher (listing the uploaded
#                  files as uploaded); every answer is 2xx, 4xx or 507 incoming_full, never 500,
#                  registry/incoming/ is left empty, and an acceptance leaves every listed
#                  target in targets/ with the bytes it signs.
# The shared fixtures are the fuzz crate's library (fuzz/src/); the seeds of the last four are
# written by `cargo run --example make_seeds` and checked by `cargo test` (both from fuzz/, with
# a CARGO_TARGET_DIR of their own: they build without the fuzzing flags).
#
# cargo-fuzz needs nightly flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. The fuzz crate is outside the workspace and builds in its own target
# directory, so it never changes the features of the workspace build.
#
# Each target starts from the committed seeds (fuzz/seeds/<target>/) plus what earlier runs
# found (fuzz/corpus/<target>/, gitignored). A crash is saved under fuzz/artifacts/<target>/;
# the script exits non-zero and prints its path. Reproduce one with
#   RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$HOME/.cache/archy-fuzz-target \
#     cargo fuzz run <target> fuzz/artifacts/<target>/crash-...      (from fuzz/)
set -uo pipefail
cd "$(dirname "$0")/../fuzz" || exit 1

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: $0 [seconds-per-target]" >&2
  exit 2
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$HOME/.cache/archy-fuzz-target"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
  list="$FUZZ_TARGETS"
elif ! list="$(cargo fuzz list)"; then
  echo "error: cargo fuzz list failed" >&2
  exit 1
fi
# Names separated by spaces or newlines; with -d '' read takes them all (and returns 1 at the end
# of its input, which is expected here).
read -r -d '' -a targets <<<"$list" || true
if ((${#targets[@]} == 0)); then
  echo "error: no fuzz targets (FUZZ_TARGETS is empty and cargo fuzz list printed none)" >&2
  exit 1
fi

echo "building fuzz targets"
cargo fuzz build || exit 1

failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  seeds=()
  [[ -d "seeds/$target" ]] && seeds=("seeds/$target")
  log="$(mktemp)" || exit 1
  echo "fuzzing $target for ${seconds}s"
  cargo fuzz run "$target" "corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=20 -print_final_stats=1 >"$log" 2>&1
  status=$?
  grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs)|stat::(number_of_executed_units|average_exec_per_sec)' "$log"
  if ((status != 0)); then
    # libFuzzer names the saved input on a line "Test unit written to <path>".
    crash="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
    [[ -n "$crash" && "$crash" != /* ]] && crash="fuzz/${crash#./}"
    grep -E -A 1 "panicked at" "$log" | head -n 4 >&2
    grep -E -m 3 "ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY" "$log" >&2
    if [[ -n "$crash" ]]; then
      echo "CRASH in $target: $crash" >&2
      failed+=("$target: $crash")
    else
      echo "$target failed (exit $status) without saving an input; log:" >&2
      tail -n 30 "$log" >&2
      failed+=("$target: exit $status")
    fi
  fi
  rm -f "$log"
done

if ((${#failed[@]})); then
  echo "fuzzing found problems:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzzing: no crashes"
