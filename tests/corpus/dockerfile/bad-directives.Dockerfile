# escape=xx
# escape=\
# syntax=
FROM busybox
# escape=`
RUN echo \
 ok
