#!/usr/bin/env bash
# Turn a member cluster's mcobs-reader token into a kubeconfig entry for the
# mcobs hub: a cluster (server URL and CA), a user (the token) and a context,
# written to a new file or merged into an existing one (an entry of the same
# name is replaced, so re-running rotates the token).
#
#   kubectl --context prod-eu apply -k deploy/member-cluster
#   deploy/member-cluster/make-kubeconfig.sh --from-context prod-eu --context eu-west -o kubeconfig
#   kubectl -n mcobs create secret generic mcobs-kubeconfig --from-file=kubeconfig
#
# Reads with kubectl: the Secret's token and ca.crt, and the API server URL of
# the source context. The token is never printed; the output file is mode 0600.
set -euo pipefail

prog=${0##*/}
namespace=mcobs
secret=mcobs-reader-token
context=""
output=mcobs-kubeconfig
from_context=""
server=""
wait_seconds=60
verify=false

usage() {
    cat <<EOF
Usage: $prog [options]

Write a kubeconfig entry for mcobs from the mcobs-reader ServiceAccount token
Secret of a member cluster (apply deploy/member-cluster there first).

Options:
  -c, --context NAME       name of the context (and cluster) to write; the same
                           name goes into mcobs.yaml clusters[].context
                           (default: the source context's name)
  -o, --output FILE        kubeconfig to create, or to merge the entry into
                           (default: $output)
      --from-context NAME  read the member cluster through this context of your
                           kubeconfig (default: the current context)
  -n, --namespace NS       namespace of the token Secret (default: $namespace)
  -s, --secret NAME        the token Secret (default: $secret)
      --server URL         API server URL the hub should use (default: the
                           source context's server)
      --wait SECONDS       how long to wait for the token controller to fill the
                           Secret in (default: $wait_seconds)
      --verify             afterwards, read /readyz and list Services with the
                           new entry
  -h, --help               this help
EOF
}

die() {
    printf '%s: %s\n' "$prog" "$*" >&2
    exit 1
}

need_value() {
    if [ "$#" -lt 2 ] || [ -z "$2" ]; then
        die "$1 needs a value (see --help)"
    fi
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        -c | --context) need_value "$@"; context=$2; shift 2 ;;
        -o | --output) need_value "$@"; output=$2; shift 2 ;;
        --from-context) need_value "$@"; from_context=$2; shift 2 ;;
        -n | --namespace) need_value "$@"; namespace=$2; shift 2 ;;
        -s | --secret) need_value "$@"; secret=$2; shift 2 ;;
        --server) need_value "$@"; server=$2; shift 2 ;;
        --wait) need_value "$@"; wait_seconds=$2; shift 2 ;;
        --verify) verify=true; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"
[[ $wait_seconds =~ ^[0-9]+$ ]] || die "--wait: not a number of seconds: $wait_seconds"

# kubectl against the member cluster, through the source context.
source_kubectl=(kubectl)
if [ -n "$from_context" ]; then
    source_kubectl+=(--context "$from_context")
fi

if [ -z "$context" ]; then
    if [ -n "$from_context" ]; then
        context=$from_context
    else
        context=$(kubectl config current-context) || die "no current context; pass --from-context"
    fi
fi
# Names end up in YAML and in mcobs.yaml: keep to characters that need no escaping
# (EKS-style ARNs with ':' and '/' are fine).
[[ $context =~ ^[A-Za-z0-9][A-Za-z0-9._:@/-]*$ ]] || die "--context: unsupported name: $context"
user="$context-mcobs-reader"

if [ -z "$server" ]; then
    server=$("${source_kubectl[@]}" config view --minify -o 'jsonpath={.clusters[0].cluster.server}') ||
        die "cannot read the API server URL of the source context"
fi
[[ $server =~ ^https?://[^[:space:]\"\\]+$ ]] || die "not an API server URL: '$server' (use --server)"
case "$server" in
    http://*) printf '%s: warning: %s is plain HTTP; clients send no token over it\n' "$prog" "$server" >&2 ;;
esac

secret_type=$("${source_kubectl[@]}" --namespace "$namespace" get secret "$secret" -o 'jsonpath={.type}') ||
    die "cannot read Secret $namespace/$secret (apply deploy/member-cluster in that cluster first)"
[ "$secret_type" = kubernetes.io/service-account-token ] ||
    die "Secret $namespace/$secret has type '$secret_type', not kubernetes.io/service-account-token"

# The token controller fills token and ca.crt in shortly after the Secret is created.
deadline=$((SECONDS + wait_seconds))
while :; do
    token_b64=$("${source_kubectl[@]}" --namespace "$namespace" get secret "$secret" -o 'jsonpath={.data.token}')
    ca_b64=$("${source_kubectl[@]}" --namespace "$namespace" get secret "$secret" -o 'jsonpath={.data.ca\.crt}')
    if [ -n "$token_b64" ] && [ -n "$ca_b64" ]; then
        break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        die "Secret $namespace/$secret has no token or ca.crt after ${wait_seconds}s (is its ServiceAccount there?)"
    fi
    sleep 2
done

b64decode() {
    if base64 --decode </dev/null >/dev/null 2>&1; then base64 --decode; else base64 -D; fi
}
token=$(printf '%s' "$token_b64" | b64decode) || die "the Secret's token is not base64"
unset token_b64
[[ $token =~ ^[A-Za-z0-9._-]+$ ]] || die "the Secret's token has unexpected characters"
[[ $ca_b64 =~ ^[A-Za-z0-9+/=]+$ ]] || die "the Secret's ca.crt is not base64"

outdir=$(dirname -- "$output")
[ -d "$outdir" ] || die "no such directory: $outdir"
umask 077
workdir=$(mktemp -d "${TMPDIR:-/tmp}/mcobs-kubeconfig.XXXXXX")
staged=""
trap 'rm -rf -- "$workdir" ${staged:+"$staged"}' EXIT
# Staged next to the output, so the final rename is atomic.
staged=$(mktemp "$outdir/.mcobs-kubeconfig.XXXXXX")

# Written by cat from a here-document: the token never appears in any process's arguments.
entry=$workdir/entry
cat >"$entry" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: "$context"
    cluster:
      server: "$server"
      certificate-authority-data: $ca_b64
users:
  - name: "$user"
    user:
      token: $token
contexts:
  - name: "$context"
    context:
      cluster: "$context"
      user: "$user"
current-context: "$context"
EOF
unset token

if [ -s "$output" ]; then
    existing=$workdir/existing
    cp -- "$output" "$existing"
    # Replace an earlier entry of the same name (the first file wins in a merge).
    kubectl config delete-context "$context" --kubeconfig "$existing" >/dev/null 2>&1 || true
    kubectl config delete-cluster "$context" --kubeconfig "$existing" >/dev/null 2>&1 || true
    kubectl config delete-user "$user" --kubeconfig "$existing" >/dev/null 2>&1 || true
    KUBECONFIG="$existing:$entry" kubectl config view --flatten --raw >"$staged" ||
        die "could not merge into $output (is it a kubeconfig?)"
    action="merged into"
else
    cat -- "$entry" >"$staged"
    action="wrote"
fi
chmod 600 "$staged"
mv -f -- "$staged" "$output"

printf '%s: %s %s: context %s, server %s, token of %s/%s\n' \
    "$prog" "$action" "$output" "$context" "$server" "$namespace" "$secret"

if [ "$verify" = true ]; then
    kubectl --kubeconfig "$output" --context "$context" get --raw /readyz >/dev/null ||
        die "verify: GET /readyz with the new entry failed"
    services=$(kubectl --kubeconfig "$output" --context "$context" get services --all-namespaces -o name) ||
        die "verify: listing Services with the new entry failed"
    count=$(printf '%s\n' "$services" | grep -c . || true)
    printf '%s: verified: /readyz ok, %s Services visible\n' "$prog" "$count"
fi
printf 'In mcobs.yaml: clusters: [{name: ..., kubeconfig: /etc/mcobs/kubeconfig, context: %s}]\n' "$context"
