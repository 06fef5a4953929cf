# Sourced first by a test that mounts a small tmpfs: runs the test again
# inside a mount namespace of its own, so that its mounts are private to
# it, or skips it where that cannot be done.
if [ -z "${IOTRULES_IN_NS:-}" ]; then
	if unshare -m true 2>/dev/null; then
		IOTRULES_IN_NS=1 exec unshare -m --propagation private sh "$0" "$@"
	fi
	# In a chroot "/" is no mount point, so unshare cannot make it
	# private; the mount holding /tmp is made private instead, inside.
	if unshare -m --propagation unchanged true 2>/dev/null; then
		IOTRULES_IN_NS=2 exec unshare -m --propagation unchanged sh "$0" "$@"
	fi
	echo "1..0 # SKIP needs a mount namespace (unshare -m) for a small tmpfs"
	exit 0
fi
if [ "$IOTRULES_IN_NS" = 2 ] && ! mount --make-rprivate "$(findmnt -n -o TARGET -T /tmp)" 2>/dev/null; then
	echo "1..0 # SKIP cannot keep a test mount private to this test (mount --make-rprivate)"
	exit 0
fi
