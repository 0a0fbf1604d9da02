# just
# comments

