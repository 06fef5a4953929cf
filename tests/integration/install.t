#!/bin/sh
# make install DESTDIR=... PREFIX=/usr: every program of bin/, a man page
# for each (the sinks through .so links to iotrules-sink(1)) that man
# --warnings renders without a word, every option of each --help in its
# page, the systemd unit accepted by systemd-analyze verify, the example
# config and rules in /etc/iotrules (never overwritten by a reinstall);
# PREFIX=/usr/local puts the unit under it; uninstall leaves /etc alone.
# Needs man-db, groff-base and systemd: without them it fails saying so.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/../.." && pwd)
progs=$(cd "$BIN" && ls | grep '^iotrules')
sinks=$(echo "$progs" | grep '^iotrules-sink-')
others=$(echo "$progs" | grep -v '^iotrules-sink-')
echo "1..$(( $(echo $progs | wc -w) + $(echo $others | wc -w) + 17 ))"

missing=""
for t in man groff lexgrog systemd-analyze make install; do
	command -v "$t" > /dev/null || missing="$missing $t"
done
if [ -n "$missing" ]; then
	echo "not ok 1 - missing:$missing (apt-get install man-db groff-base systemd make coreutils)"
	exit 1
fi

R=$T/root
out=$(make -s -C "$here" install DESTDIR="$R" PREFIX=/usr BIN="$BIN" NOBUILD=1 2>&1); rc=$?
ok '[ $rc -eq 0 ]' "make install DESTDIR PREFIX=/usr ran ($(echo "$out" | tail -1 | cut -c1-150))"
M=$R/usr/share/man

# Every program: installed, executable, with its page in man1 (a sink's
# is the .so link to iotrules-sink.1, which man follows: checked below).
for p in $progs; do
	ok '[ -x "$R/usr/bin/$p" ] && [ -s "$M/man1/$p.1" ]' "$p installed in /usr/bin, its page in /usr/share/man/man1/$p.1"
done

# Each page of man/: no warning from man --warnings (80 columns, as a
# terminal), and the sections a page needs.
pages=$(cd "$here/man" && ls)
warn=""
for f in $pages; do
	w=$(MANWIDTH=80 man --warnings -l "$M/man${f##*.}/$f" 2>&1 > /dev/null)
	[ -n "$w" ] && warn="$warn $f: $w"
done
ok '[ -z "$warn" ] && [ $(echo $pages | wc -w) -ge 9 ]' "$(echo $pages | wc -w) installed man pages, man --warnings says nothing ($(echo "$warn" | head -c 300))"
lack=""
heads=$(cd "$here/man" && grep -H '^\.SH ' $pages | sed 's/:\.SH /:/; s/ /./g')
for f in $pages; do
	case $f in
	*.1) need="NAME SYNOPSIS DESCRIPTION OPTIONS EXIT.STATUS ENVIRONMENT FILES SEE.ALSO" ;;
	*) need="NAME SYNOPSIS DESCRIPTION FILES SEE.ALSO" ;;
	esac
	for h in $need; do
		case " $(echo $heads) " in *" $f:$h "*) ;; *) lack="$lack $f:$h" ;; esac
	done
done
ok '[ -z "$lack" ]' "every page has its sections (missing:${lack:- none})"
for p in iotrules.conf.5 iotrules-rule.5; do
	ok '[ -f "$M/man5/$p" ]' "section 5: $p installed"
done

# Every option of each program's --help is in its page (the sinks': in
# iotrules-sink(1)).
for p in $others iotrules-sink; do
	if [ "$p" = iotrules-sink ]; then
		opts=$(for s in $sinks; do "$BIN/$s" --help; done 2>&1 | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
	else
		opts=$("$BIN/$p" --help 2>&1 | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
	fi
	# The page's options, as words (roff escapes taken out), against --help's.
	sed 's/\\-/-/g; s/\\f[BRI]//g' "$here/man/$p.1" 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u > "$T/inpage"
	undoc=$(printf '%s\n' "$opts" | grep -vxF -f "$T/inpage" | tr '\n' ' ')
	ok '[ -s "$T/inpage" ] && [ -n "$opts" ] && [ -z "$undoc" ]' "$p.1 documents every option of --help (missing:${undoc:- none})"
done

# iotrules-sink(1) is written by hand: its NAME (what whatis and apropos
# read) and its table must name every sink built.
names=$(lexgrog "$here/man/iotrules-sink.1" 2>/dev/null | sed 's/^[^"]*"//; s/ - .*//')
unnamed=""
for p in $sinks; do
	echo "$names" | grep -qx "$p" && grep -q "^${p#iotrules-sink-}	" "$here/man/iotrules-sink.1" || unnamed="$unnamed $p"
done
ok '[ -z "$unnamed" ]' "iotrules-sink(1) names every sink in NAME and in its table (missing:${unnamed:- none})"

# man iotrules-sink-kafka shows the sinks' page; iotrules(1) lists the commands.
out=$(MANWIDTH=80 man -M "$M" iotrules-sink-kafka 2>&1)
ok 'echo "$out" | grep -q "IOTRULES-SINK(1)" && echo "$out" | grep -q -- "--retry-s"' "man iotrules-sink-kafka shows iotrules-sink(1)"
out=$(MANWIDTH=80 man -l "$M/man1/iotrules.1" 2>&1)
cmds=""
for c in status reload scale restart "destination confirm" check check-config; do
	echo "$out" | grep -q "^ *iotrules .*$c" || cmds="$cmds $c"
done
ok '[ -z "$cmds" ]' "man -l iotrules.1 shows every command in its synopsis (missing:${cmds:- none})"

# The unit: ExecStart the installed supervisor on /etc/iotrules/config.json;
# systemd-analyze verify checks that the programs exist and the
# Documentation= pages are found, so it gets a copy whose paths point
# into DESTDIR, with MANPATH there (--root would need a whole system in
# DESTDIR: sysinit.target, /bin/kill).
U=$R/lib/systemd/system/iotrules.service
ok 'grep -qx "ExecStart=/usr/bin/iotrules-supervisor --config /etc/iotrules/config.json" "$U" &&
    grep -qx "RestartPreventExitStatus=100" "$U" && grep -qx "ExecReload=/bin/kill -HUP \$MAINPID" "$U"' \
    "unit installed in /lib/systemd/system: ExecStart the supervisor on /etc/iotrules/config.json, 100 not restarted, reload = SIGHUP"
mkdir -p "$T/verify"
sed "s|=/usr/bin/|=$R/usr/bin/|g; s| /etc/iotrules/| $R/etc/iotrules/|g" "$U" > "$T/verify/iotrules.service"
out=$(cd "$T/verify" && MANPATH="$M" systemd-analyze verify "$T/verify/iotrules.service" 2>&1); rc=$?
ok '[ $rc -eq 0 ] && [ -z "$out" ]' "systemd-analyze verify accepts the unit, silently (rc $rc: $(echo "$out" | head -3 | tr '\n' ' ' | cut -c1-300))"
sed 's|iotrules-supervisor --config|iotrules-supervisor-missing --config|' "$T/verify/iotrules.service" > "$T/verify/bad.service"
out=$(cd "$T/verify" && MANPATH="$M" systemd-analyze verify "$T/verify/bad.service" 2>&1); rc=$?
ok '[ $rc -ne 0 ]' "and refuses it when ExecStart is missing (the check can fail: rc $rc)"

# Config and rules: installed, accepted, never overwritten.
ok 'grep -q "\"rules\": \"rules\"" "$R/etc/iotrules/config.json" && [ -f "$R/etc/iotrules/rules/sensors_fahrenheit.json" ]' \
    "example config in /etc/iotrules/config.json, example rules in /etc/iotrules/rules"
out=$("$BIN/iotrules" check "$R"/etc/iotrules/rules/*.json 2>&1)
ok 'echo "$out" | grep -q "^OK " && ! echo "$out" | grep -q "^ERROR"' "the installed rules pass iotrules check"

# PREFIX=/usr/local (the default): everything under it, the unit too; a
# config and a rules directory already there are kept as they are.
L=$T/local
mkdir -p "$L/etc/iotrules/rules"
echo '{"broker": "mqtt://127.0.0.1:1999"}' > "$L/etc/iotrules/config.json"
make -s -C "$here" install DESTDIR="$L" BIN="$BIN" NOBUILD=1 > /dev/null 2>&1
ok 'grep -q 1999 "$L/etc/iotrules/config.json" && [ -z "$(ls "$L/etc/iotrules/rules")" ]' \
    "an install keeps the config and the rules directory already there"
ok '[ -x "$L/usr/local/bin/iotrules-supervisor" ] && [ -f "$L/usr/local/share/man/man1/iotrules.1" ] &&
    grep -qx "ExecStart=/usr/local/bin/iotrules-supervisor --config /etc/iotrules/config.json" "$L/usr/local/lib/systemd/system/iotrules.service"' \
    "default PREFIX /usr/local: programs, pages and the unit (ExecStart /usr/local/bin/...) under it"
make -s -C "$here" uninstall DESTDIR="$L" > /dev/null 2>&1
left=$(cd "$L" && find . -type f | grep -v '^./etc/iotrules/' | head -3)
ok '[ -z "$left" ] && [ -f "$L/etc/iotrules/config.json" ]' "make uninstall removes every installed file but /etc/iotrules (left: ${left:-nothing})"
