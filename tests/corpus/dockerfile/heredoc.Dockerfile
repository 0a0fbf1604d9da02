# syntax=docker/dockerfile:1
FROM busybox
RUN <<EOF
echo hello
ENV NOT_AN_INSTRUCTION=1
EOF
COPY <<-"CONF" <<INNER /etc/
	key=value
	CONF
inner
INNER
USER nobody
