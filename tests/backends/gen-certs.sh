#!/bin/sh
# gen-certs.sh DIR [EXTRA_DNS_NAME...]: a throw-away test CA (DIR/ca.pem) and a
# server certificate signed by it (DIR/server.pem, DIR/server.key) for
# localhost, 127.0.0.1 and the AWS production host names the sinks use, so
# that a sink can keep the production URL and be connected to the recorder
# (CURLOPT_CONNECT_TO + CURLOPT_CAINFO=DIR/ca.pem).  Nothing here is secret.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [EXTRA_DNS_NAME...]" >&2; exit 2; }
d=$1; shift
mkdir -p "$d"
r=us-east-1
san="DNS:localhost,IP:127.0.0.1,DNS:*.localhost,DNS:amazonaws.com,DNS:*.amazonaws.com"
for n in "*.$r.amazonaws.com" "*.s3.$r.amazonaws.com" "*.s3.amazonaws.com" \
	"*.iotevents.$r.amazonaws.com" "*.iotsitewise.$r.amazonaws.com" "*.iotanalytics.$r.amazonaws.com" \
	"*.$r.es.amazonaws.com" "*.execute-api.$r.amazonaws.com" "*.timestream.$r.amazonaws.com" \
	"*.iot.$r.amazonaws.com" "sqs.$r.localhost" "$@"; do
	san="$san,DNS:$n"
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj "/CN=iotrules test CA" \
	-keyout "$d/ca.key" -out "$d/ca.pem" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$san" > "$d/server.ext"
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
	-days 30 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
rm -f "$d/server.csr" "$d/ca.srl"
