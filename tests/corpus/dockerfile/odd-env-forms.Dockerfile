FROM busybox
ENV A B C
ENV "Q"="x y" R=\"z
ENV =x
ARG PASSWORD
ARG TOKEN=
ENV X=${Y:-${Z:-w}}
