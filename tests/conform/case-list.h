/*
 * case-list.h: the registry of conformance cases, in the order they run. X(name, timeout in seconds).
 *
 * A case's name ends in _4 or _6 when it runs over one address family only because the other is covered by its twin.
 * The timeout is an alarm in the case's own process: a case that hangs is reported as FAIL(timeout) and the run goes
 * on. tests/test_conform.py reads the names from this file.
 */
#define CONFORM_CASES(X)                                                                                           \
	/* case-connect.c */                                                                                       \
	X(connect_ok_4, 3)                                                                                         \
	X(connect_ok_6, 3)                                                                                         \
	X(connect_refused_4, 3)                                                                                    \
	X(connect_refused_6, 3)                                                                                    \
	X(connect_nb_ok_4, 3)                                                                                      \
	X(connect_nb_ok_6, 3)                                                                                      \
	X(connect_nb_refused_4, 3)                                                                                 \
	X(connect_nb_refused_6, 3)                                                                                 \
	X(connect_nb_recheck_4, 3)                                                                                 \
	X(connect_nb_timeout_4, 10)                                                                                \
	X(connect_timeout_4, 10)                                                                                   \
	/* case-accept.c */                                                                                        \
	X(accept_4, 3)                                                                                             \
	X(accept_6, 3)                                                                                             \
	X(accept_mapped_6, 3)                                                                                      \
	X(accept4_flags_4, 3)                                                                                      \
	X(accept_eagain_4, 3)                                                                                      \
	X(listen_readable_4, 3)                                                                                    \
	X(listen_readable_6, 3)                                                                                    \
	/* case-listen.c */                                                                                        \
	X(listen_dup_4, 8)                                                                                         \
	X(listen_dup_6, 8)                                                                                         \
	X(listen_after_fork_4, 8)                                                                                  \
	X(listen_after_scm_rights_4, 8)                                                                            \
	X(listen_on_received_4, 8)                                                                                 \
	/* case-poll.c */                                                                                          \
	X(poll_mixed_4, 3)                                                                                         \
	X(select_mixed_4, 3)                                                                                       \
	X(epoll_level_4, 3)                                                                                        \
	X(epoll_edge_4, 3)                                                                                         \
	X(epoll_listen_4, 3)                                                                                       \
	X(epoll_connect_4, 3)                                                                                      \
	/* case-io.c */                                                                                            \
	X(io_calls_4, 3)                                                                                           \
	X(echo_1mb_4, 5)                                                                                           \
	X(echo_1mb_6, 5)                                                                                           \
	X(upload_shutdown_4, 5)                                                                                    \
	X(download_eof_4, 5)                                                                                       \
	X(halfclose_4, 3)                                                                                          \
	X(halfclose_6, 3)                                                                                          \
	X(halfclose_echo_4, 3)                                                                                     \
	X(peek_4, 3)                                                                                               \
	X(waitall_4, 3)                                                                                            \
	X(dontwait_4, 3)                                                                                           \
	/* case-oob.c */                                                                                           \
	X(oob_4, 8)                                                                                                \
	X(oob_inline_4, 8)                                                                                         \
	/* case-errors.c */                                                                                        \
	X(sigpipe_4, 3)                                                                                            \
	X(send_after_peer_close_4, 5)                                                                              \
	X(reset_recv_4, 3)                                                                                         \
	X(reset_recv_6, 3)                                                                                         \
	X(reset_poll_4, 3)                                                                                         \
	X(reset_options_4, 3)                                                                                      \
	X(rcvtimeo_4, 3)                                                                                           \
	X(sndtimeo_4, 10)                                                                                          \
	/* case-opts.c */                                                                                          \
	X(names_4, 3)                                                                                              \
	X(names_6, 3)                                                                                              \
	X(reuseaddr_4, 3)                                                                                          \
	X(reuseaddr_rebind_4, 3)                                                                                   \
	X(nodelay_4, 3)                                                                                            \
	X(nodelay_6, 3)                                                                                            \
	X(sockopts_misc_4, 3)                                                                                      \
	X(fionread_4, 3)                                                                                           \
	X(nonblock_4, 3)                                                                                           \
	/* case-close.c */                                                                                         \
	X(close_in_recv_4, 4)                                                                                      \
	X(close_in_accept_4, 4)                                                                                    \
	X(shutdown_in_accept_4, 4)                                                                                 \
	X(dup_close_4, 3)                                                                                          \
	X(close_syscall_reuse_4, 3)                                                                                \
	X(close_range_reuse_4, 3)                                                                                  \
	X(close_raw_reuse_4, 3)                                                                                    \
	X(close_raw_file_4, 3)                                                                                     \
	X(shutdown_rdwr_then_linger_4, 8)                                                                          \
	X(fork_inherit_4, 3)                                                                                       \
	/* case-rebind.c */                                                                                        \
	X(rebind_listener_4, 5)                                                                                    \
	X(rebind_bound_4, 5)                                                                                       \
	X(rebind_udp_4, 5)                                                                                         \
	/* case-mmsg.c */                                                                                          \
	X(mmsg_timeout_4, 5)                                                                                       \
	X(mmsg_timeout_6, 5)                                                                                       \
	/* case-unix.c */                                                                                          \
	X(unix_pair, 3)                                                                                            \
	X(unix_listen, 3)                                                                                          \
	X(unix_long_address, 3)                                                                                    \
	/* case-udp.c */                                                                                           \
	X(udp_sendto_4, 5)                                                                                         \
	X(udp_sendto_6, 5)                                                                                         \
	X(udp_msg_4, 5)                                                                                            \
	X(udp_msg_6, 5)                                                                                            \
	X(udp_mmsg_4, 3)                                                                                           \
	X(udp_mmsg_6, 3)                                                                                           \
	X(udp_mmsg_syscall_4, 3)                                                                                   \
	X(udp_connected_4, 5)                                                                                      \
	X(udp_connected_6, 5)                                                                                      \
	X(udp_refused_4, 8)                                                                                        \
	X(udp_refused_6, 8)                                                                                        \
	X(udp_recverr_unconnected_4, 8)                                                                            \
	X(udp_broadcast_4, 3)                                                                                      \
	X(udp_poll_4, 3)                                                                                           \
	X(udp_poll_6, 3)                                                                                           \
	X(udp_mapped_6, 3)                                                                                         \
	X(udp_shutdown_4, 4)                                                                                       \
	X(udp_flood_nonblocking, 12)                                                                               \
	/* case-process.c */                                                                                       \
	X(fork_listener_4, 5)                                                                                      \
	X(fork_accept_both_4, 5)                                                                                   \
	X(exec_env_inherit_4, 5)                                                                                   \
	X(exec_env_empty_4, 5)                                                                                     \
	X(exec_env_rebuilt_4, 5)                                                                                   \
	X(vfork_exec_4, 5)                                                                                         \
	X(posix_spawn_4, 8)                                                                                        \
	X(exec_cloexec_4, 5)                                                                                       \
	X(dup_calls_4, 5)                                                                                          \
	X(scm_rights_fork_4, 5)                                                                                    \
	X(scm_rights_fork_6, 5)                                                                                    \
	X(scm_rights_exec_4, 5)                                                                                    \
	/* case-threads.c */                                                                                       \
	X(threads_echo_4, 15)                                                                                      \
	X(threads_blocked_4, 15)                                                                                   \
	/* case-options.c */                                                                                       \
	X(sock_info_4, 3)                                                                                          \
	X(sock_info_6, 3)                                                                                          \
	X(reuseport_4, 4)                                                                                          \
	X(reuseport_6, 4)                                                                                          \
	X(linger_4, 5)                                                                                             \
	X(linger_6, 5)                                                                                             \
	X(bufs_4, 3)                                                                                               \
	X(timeo_4, 3)                                                                                              \
	X(error_acceptconn_4, 3)                                                                                   \
	X(tcp_opts_4, 3)                                                                                           \
	X(tcp_opts_6, 3)                                                                                           \
	X(ip_opts_4, 3)                                                                                            \
	X(ipv6_opts_6, 3)                                                                                          \
	X(bad_opts_4, 3)                                                                                           \
	X(sendfile_4, 4)                                                                                           \
	X(splice_4, 4)                                                                                             \
	X(ioctl_4, 4)                                                                                              \
	/* case-fds.c */                                                                                           \
	X(socket_lowest_fd_4, 3)                                                                                   \
	X(closerange_reuse_4, 5)                                                                                   \
	X(fork_sees_opts_4, 4)                                                                                     \
	X(pool_ahead_fork_4, 10)
