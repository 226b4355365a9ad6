# Sourced by the scripts beside it: starts etcd (Debian's etcd-server) and
# a kube-apiserver (build-apiserver.sh) on free loopback ports, in a
# temporary directory removed on exit. Afterwards: $api (the URL), $work,
# the function k (curl with the admin token and the server's CA) and
# $work/kubeconfig (admin, namespace default) for kubectl.
apiserver="${GPURM_KUBE_APISERVER:-$HOME/.cache/gpurm-kube/bin/kube-apiserver}"
[ -x "$apiserver" ] || { echo "no kube-apiserver at $apiserver: run tests/kube/build-apiserver.sh" >&2; exit 1; }
command -v etcd >/dev/null || { echo "no etcd: apt-get install etcd-server" >&2; exit 1; }
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_client=$(free_port); etcd_peer=$(free_port); secure_port=$(free_port)
etcd --name local --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_client" \
  --advertise-client-urls "http://127.0.0.1:$etcd_client" --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "local=http://127.0.0.1:$etcd_peer" >"$work/etcd.log" 2>&1 &
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null
echo "local-admin-token,admin,admin,system:masters" >"$work/tokens.csv"
"$apiserver" --etcd-servers "http://127.0.0.1:$etcd_client" --bind-address 127.0.0.1 \
  --advertise-address 127.0.0.1 --secure-port "$secure_port" --cert-dir "$work/certs" \
  --token-auth-file "$work/tokens.csv" --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$work/sa.pub" --service-account-signing-key-file "$work/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 --disable-admission-plugins ServiceAccount \
  --enable-priority-and-fairness=false >"$work/apiserver.log" 2>&1 &
api="https://127.0.0.1:$secure_port"
k() { curl -sS --cacert "$work/certs/apiserver.crt" -H "Authorization: Bearer local-admin-token" \
  -H "Content-Type: application/json" "$@"; }
for _ in $(seq 120); do
  [ -f "$work/certs/apiserver.crt" ] && k "$api/readyz" >/dev/null 2>&1 && break
  sleep 1
done
k "$api/readyz" >/dev/null || { tail -20 "$work/apiserver.log" >&2; exit 1; }
cat >"$work/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
current-context: local
clusters:
- name: local
  cluster: {server: "$api", certificate-authority: "$work/certs/apiserver.crt"}
users:
- name: admin
  user: {token: local-admin-token}
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
KUBECONFIG
