#!/usr/bin/env bash
# Starts a throwaway Samba AD DC on loopback for the Active Directory tests
# (internal/sambatest runs it for sources/ad and cmd/internal/connect) and
# prints how to reach it, as KEY=value lines:
#
#   AUTOIMPORT_TEST_SAMBA_URL       ldaps://127.0.0.1:636 (certificate SANs: localhost, 127.0.0.1)
#   AUTOIMPORT_TEST_SAMBA_CA        PEM file to trust
#   AUTOIMPORT_TEST_SAMBA_BIND_DN   Administrator@corp.example.test
#   AUTOIMPORT_TEST_SAMBA_PASSWORD  the throwaway domain's admin password
#   AUTOIMPORT_TEST_SAMBA_BASE_DN   DC=corp,DC=example,DC=test
#   AUTOIMPORT_TEST_SAMBA_PIDFILE   kill the process in it to stop Samba
#   AUTOIMPORT_TEST_SAMBA_BULK_USERS  users seeded under OU=Bulk
#
# Usage: start.sh [start|stop]. Runs as root. Idempotent: it installs the
# Debian packages only when samba-tool is missing, provisions only when the
# directory holds no domain, starts Samba only when it is not running and
# seeds only once. A stop under running tests breaks them: the tests stop
# the DC themselves when the last test binary using it is done.
# Environment:
#   AUTOIMPORT_SAMBA_DIR    where the domain lives (default /tmp/autoimport-samba)
#   AUTOIMPORT_SAMBA_USERS  number of bulk users to seed (default 2000)
set -euo pipefail

DIR=${AUTOIMPORT_SAMBA_DIR:-/tmp/autoimport-samba}
USERS=${AUTOIMPORT_SAMBA_USERS:-2000}
REALM=CORP.EXAMPLE.TEST
DOMAIN=CORP
BASE="DC=corp,DC=example,DC=test"
# A throwaway password for a domain that exists only on loopback.
ADMINPASS='Autoimport-Test-1!'
BINDDN="Administrator@corp.example.test"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PIDFILE="$DIR/run/samba.pid"

log() { echo "start.sh: $*" >&2; }
die() { log "$*"; exit 1; }

running() {
	[[ -s $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

if [[ ${1:-start} == stop ]]; then
	if running; then
		pid=$(cat "$PIDFILE")
		kill "$pid"
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		log "stopped samba ($pid)"
	fi
	exit 0
fi

[[ $(id -u) == 0 ]] || die "must run as root (samba binds privileged ports)"

# One setup at a time (two test binaries may start together).
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock -w 300 9 || die "another start.sh holds $DIR.lock"

if ! command -v samba-tool >/dev/null || ! command -v samba >/dev/null || ! command -v ldapmodify >/dev/null; then
	log "installing samba (about 35 s)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	apt-get install -y -q samba samba-ad-dc winbind krb5-user ldap-utils openssl >&2
fi

if [[ ! -f $DIR/etc/smb.conf ]]; then
	log "provisioning $REALM into $DIR"
	rm -rf "$DIR"
	mkdir -p "$DIR"
	samba-tool domain provision --realm="$REALM" --domain="$DOMAIN" --server-role=dc \
		--dns-backend=NONE --use-rfc2307 --adminpass="$ADMINPASS" --targetdir="$DIR" \
		--host-name=dc1 --option="interfaces = lo" --option="bind interfaces only = yes" >"$DIR/provision.log" 2>&1 ||
		{ cat "$DIR/provision.log" >&2; die "provision failed"; }

	# Samba makes run/winbindd and run/ntp_signd itself (it insists on 0750).
	mkdir -p "$DIR/tls" "$DIR/run" "$DIR/log"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
		-addext "subjectAltName=DNS:localhost,DNS:dc1.corp.example.test,IP:127.0.0.1" \
		-keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" 2>/dev/null
	chmod 600 "$DIR/tls/key.pem"

	# Test passwords need not be complex.
	samba-tool domain passwordsettings set --complexity=off --min-pwd-length=1 --history-length=0 \
		--min-pwd-age=0 --max-pwd-age=0 -s "$DIR/etc/smb.conf" >&2
fi

# Settings provision does not persist: simple binds over plain LDAP, every
# runtime file under $DIR, our certificate (Samba's own has no SAN, which Go
# rejects), and RPC ports above the kernel's ephemeral range so a busy
# machine's outgoing connections cannot take them. Checked on every run.
ensure() { # ensure "name = value"
	grep -qF "$1" "$DIR/etc/smb.conf" || sed -i "/^\[global\]/a\\	$1" "$DIR/etc/smb.conf"
}
ensure "ldap server require strong auth = no"
ensure "pid directory = $DIR/run"
ensure "winbindd socket directory = $DIR/run/winbindd"
ensure "ntp signd socket directory = $DIR/run/ntp_signd"
ensure "log file = $DIR/log/samba.log"
ensure "tls enabled = yes"
ensure "tls keyfile = $DIR/tls/key.pem"
ensure "tls certfile = $DIR/tls/cert.pem"
ensure "tls cafile ="
ensure "rpc server dynamic port range = 61000-61999"

start_samba() {
	rm -f "$PIDFILE"
	samba -s "$DIR/etc/smb.conf" -D 9>&- # the daemon must not inherit the lock
}
started=$SECONDS
attempts=1
if ! running; then
	log "starting samba"
	start_samba
fi

export LDAPTLS_CACERT="$DIR/tls/cert.pem"
ldap_ok() {
	ldapsearch -LLL -x -H ldaps://127.0.0.1:636 -D "$BINDDN" -w "$ADMINPASS" -b "$BASE" -s base dn >/dev/null 2>&1
}
deadline=$((SECONDS + 90))
until ldap_ok; do
	if ! running && ((SECONDS > started + 10)); then
		if ((attempts < 3)); then
			# A port Samba wants may have been busy for a moment.
			log "samba is not running; starting it again"
			attempts=$((attempts + 1))
			started=$SECONDS
			start_samba
			continue
		fi
		tail -20 "$DIR/log/samba.log" >&2 || true
		die "samba is not running (see $DIR/log/samba.log)"
	fi
	((SECONDS < deadline)) || die "LDAP did not answer within 90 s"
	sleep 0.5
done

if [[ ! -f $DIR/seeded ]]; then
	log "seeding the fixture and $USERS bulk users"
	pwd64=$(printf '"%s"' "$ADMINPASS" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
	ldif="$DIR/seed.ldif"
	sed -e "s/@BASE@/$BASE/g" -e "s|@PWD@|$pwd64|g" "$HERE/fixtures.ldif" >"$ldif"
	first=(James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Priya Wei Olga Mateo Aisha Kenji Fatima Lars)
	last=(Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Nakamura Schmidt Kowalski Novak Rossi Dubois Okafor Singh Kim Larsen)
	for ((i = 0; i < USERS; i++)); do
		f=${first[i % ${#first[@]}]}
		l=${last[(i / ${#first[@]}) % ${#last[@]}]}
		n=$(printf %05d "$i")
		sam="${f:0:1}${l}${n}"
		uac=512
		((i % 20 == 19)) && uac=514
		printf 'dn: CN=%s %s %s,OU=Bulk,%s\nchangetype: add\nobjectClass: user\nsAMAccountName: %s\nuserPrincipalName: %s@corp.example.test\ngivenName: %s\nsn: %s\ndisplayName: %s %s\nmail: %s.%s.%s@example.test\nunicodePwd:: %s\nuserAccountControl: %s\n\n' \
			"$f" "$l" "$n" "$BASE" "${sam,,}" "${sam,,}" "$f" "$l" "$f" "$l" "${f,,}" "${l,,}" "$n" "$pwd64" "$uac"
	done >>"$ldif"
	# -c: carry on past entries an interrupted earlier run already added;
	# anything worse than "already exists" fails the seeding.
	ldapmodify -c -x -H ldaps://127.0.0.1:636 -D "$BINDDN" -w "$ADMINPASS" -f "$ldif" >"$DIR/seed.log" 2>&1 || true
	if grep -E '^ldap_[a-z_]+: ' "$DIR/seed.log" | grep -vqE 'Already exists|Type or value exists'; then
		grep -E -A2 '^ldap_[a-z_]+: ' "$DIR/seed.log" | head -20 >&2
		die "seeding failed (see $DIR/seed.log)"
	fi
	if grep -qE 'missing|invalid format' "$DIR/seed.log"; then
		grep -E 'missing|invalid format' "$DIR/seed.log" | head -5 >&2
		die "seed LDIF is malformed"
	fi
	echo "$USERS" >"$DIR/seeded"
fi

cat <<FACTS
AUTOIMPORT_TEST_SAMBA_URL=ldaps://127.0.0.1:636
AUTOIMPORT_TEST_SAMBA_CA=$DIR/tls/cert.pem
AUTOIMPORT_TEST_SAMBA_BIND_DN=$BINDDN
AUTOIMPORT_TEST_SAMBA_PASSWORD=$ADMINPASS
AUTOIMPORT_TEST_SAMBA_BASE_DN=$BASE
AUTOIMPORT_TEST_SAMBA_PIDFILE=$PIDFILE
AUTOIMPORT_TEST_SAMBA_BULK_USERS=$(cat "$DIR/seeded")
FACTS
