// SPDX-License-Identifier: Apache-2.0
/*
 * test_sim_core.c - the parts of `vakt sim` below option parsing: naming
 * ends, choosing address families, ports, the two evaluations and their
 * consistency check, and the output formats.
 *
 * The tools/ sources only link into the vakt binary, so the sources under test are
 * compiled into this test directly.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../tools/simcore.c"
#include "../../tools/simout.c"

static const char seed_yaml[] =
	"apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n"
	"---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: fe, namespace: prod, labels: {app: fe}}\n"
	"spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}\n"
	"status: {podIP: 10.1.0.1, podIPs: [{ip: 10.1.0.1}, {ip: 'fd00::1'}]}\n"
	"---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: be, namespace: prod, labels: {app: be}}\n"
	"spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}\n"
	"status: {podIP: 10.1.0.2, podIPs: [{ip: 10.1.0.2}, {ip: 'fd00::2'}]}\n"
	"---\n"
	"apiVersion: v1\nkind: Pod\nmetadata: {name: v4only, namespace: prod}\n"
	"spec: {containers: [{name: c}]}\n"
	"status: {podIP: 10.1.0.3}\n"
	"---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: prod}\n"
	"spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n"
	"---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: fe-out, namespace: prod}\n"
	"spec: {podSelector: {matchLabels: {app: fe}}, policyTypes: [Egress],\n"
	"  egress: [{to: [{podSelector: {matchLabels: {app: be}}}], ports: [{port: 8080}]}]}\n"
	"---\n"
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: be-in, namespace: prod}\n"
	"spec: {podSelector: {matchLabels: {app: be}},\n"
	"  ingress: [{from: [{podSelector: {matchLabels: {app: fe}}}], ports: [{port: http}]}]}\n";

static int world_setup(void **state)
{
	struct sim_world *w = calloc(1, sizeof(*w));
	struct vakt_objset set = { 0 };
	struct vakt_error e = { .msg = "" };
	char err[SIM_ERR_LEN] = "";

	assert_non_null(w);
	assert_int_equal(vakt_load_buffer(&set, seed_yaml, strlen(seed_yaml), "seed.yaml", NULL, &e), 0);
	w->store = vakt_store_new();
	assert_non_null(w->store);
	assert_int_equal(vakt_objset_to_store(&set, w->store), 0);
	vakt_objset_free(&set);
	assert_int_equal(sim_world_compile(w, err, sizeof(err)), 0);
	*state = w;
	return 0;
}

static int world_teardown(void **state)
{
	sim_world_free(*state);
	free(*state);
	return 0;
}

static const struct vakt_pod *pod(const struct sim_world *w, const char *name)
{
	const struct vakt_pod *p = vakt_store_pod(w->store, "prod", name);

	assert_non_null(p);
	return p;
}

/* Both ends as the CLI would name them. */
static void ends(const struct sim_world *w, const char *from, const char *to, struct vakt_end *s,
		 struct vakt_end *d)
{
	struct sim_endpoint a, b;
	char err[SIM_ERR_LEN];

	assert_int_equal(sim_endpoint_parse(w->store, from, &a, err, sizeof(err)), 0);
	assert_int_equal(sim_endpoint_parse(w->store, to, &b, err, sizeof(err)), 0);
	assert_int_equal(sim_pick_addrs(&a, &b, s, d, err, sizeof(err)), 0);
}

static void test_port_parse_accepts_numbers_in_range_and_port_names(void **state)
{
	struct sim_port p;
	char err[SIM_ERR_LEN];

	(void)state;
	assert_int_equal(sim_port_parse("1", &p, err, sizeof(err)), 0);
	assert_int_equal(p.num, 1);
	assert_null(p.name);
	assert_int_equal(sim_port_parse("65535", &p, err, sizeof(err)), 0);
	assert_int_equal(p.num, 65535);
	assert_int_equal(sim_port_parse("serve-80-tcp", &p, err, sizeof(err)), 0);
	assert_string_equal(p.name, "serve-80-tcp");
}

static void test_port_parse_rejects_out_of_range_and_invalid_names(void **state)
{
	static const char *const bad[] = { "0", "65536", "99999999999999999999999", "", "-1", "HTTP",
					   "a--b", "-http", "http-", "abcdefghijklmnop", "80a!", "123-" };
	struct sim_port p;
	char err[SIM_ERR_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_true(sim_port_parse(bad[i], &p, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, bad[i]));
	}
}

static void test_proto_parse_accepts_any_case_of_tcp_udp_sctp_only(void **state)
{
	(void)state;
	assert_int_equal(sim_proto_parse("TCP"), IPPROTO_TCP);
	assert_int_equal(sim_proto_parse("udp"), IPPROTO_UDP);
	assert_int_equal(sim_proto_parse("Sctp"), IPPROTO_SCTP);
	assert_true(sim_proto_parse("ICMP") < 0);
	assert_true(sim_proto_parse("") < 0);
	assert_true(sim_proto_parse("TCPTCPTCP") < 0);
}

static void test_endpoint_parse_names_pods_by_name_or_address(void **state)
{
	struct sim_world *w = *state;
	struct sim_endpoint e;
	char err[SIM_ERR_LEN];

	assert_int_equal(sim_endpoint_parse(w->store, "prod/fe", &e, err, sizeof(err)), 0);
	assert_ptr_equal(e.pod, pod(w, "fe"));
	assert_false(e.has_addr);
	assert_int_equal(sim_endpoint_parse(w->store, "fd00::2", &e, err, sizeof(err)), 0);
	assert_ptr_equal(e.pod, pod(w, "be"));
	assert_true(e.has_addr);
	assert_int_equal(sim_endpoint_parse(w->store, "192.0.2.1", &e, err, sizeof(err)), 0);
	assert_null(e.pod);
	assert_true(e.has_addr);
}

static void test_endpoint_parse_rejects_unknown_pods_and_garbage(void **state)
{
	struct sim_world *w = *state;
	struct sim_endpoint e;
	char err[SIM_ERR_LEN];

	assert_int_equal(sim_endpoint_parse(w->store, "prod/nope", &e, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "unknown pod prod/nope"));
	assert_int_equal(sim_endpoint_parse(w->store, "a/b/c", &e, err, sizeof(err)), -EINVAL);
	assert_int_equal(sim_endpoint_parse(w->store, "/fe", &e, err, sizeof(err)), -EINVAL);
	assert_int_equal(sim_endpoint_parse(w->store, "prod/", &e, err, sizeof(err)), -EINVAL);
	assert_int_equal(sim_endpoint_parse(w->store, "10.0.0.0/8", &e, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "address range"));
}

static void test_pick_addrs_prefers_ipv4_unless_an_ipv6_address_is_given(void **state)
{
	struct sim_world *w = *state;
	struct vakt_end s, d;

	ends(w, "prod/fe", "prod/be", &s, &d);
	assert_true(vakt_addr_is_v4(&s.addr));
	assert_true(vakt_addr_is_v4(&d.addr));
	ends(w, "prod/fe", "fd00::2", &s, &d);
	assert_false(vakt_addr_is_v4(&s.addr));
	assert_memory_equal(&s.addr, &pod(w, "fe")->ips[1], sizeof(s.addr));
	assert_ptr_equal(d.pod, pod(w, "be"));
}

static void test_pick_addrs_fails_without_a_common_family(void **state)
{
	struct sim_world *w = *state;
	struct sim_endpoint a, b;
	struct vakt_end s, d;
	char err[SIM_ERR_LEN];

	assert_int_equal(sim_endpoint_parse(w->store, "prod/v4only", &a, err, sizeof(err)), 0);
	assert_int_equal(sim_endpoint_parse(w->store, "fd00::1", &b, err, sizeof(err)), 0);
	assert_int_equal(sim_pick_addrs(&a, &b, &s, &d, err, sizeof(err)), -EAFNOSUPPORT);
	assert_non_null(strstr(err, "no IPv6 address"));
	assert_int_equal(sim_endpoint_parse(w->store, "10.1.0.3", &a, err, sizeof(err)), 0);
	assert_int_equal(sim_pick_addrs(&a, &b, &s, &d, err, sizeof(err)), -EAFNOSUPPORT);
	assert_non_null(strstr(err, "different address families"));
}

static void test_named_port_resolves_against_each_destination(void **state)
{
	struct sim_world *w = *state;
	struct sim_port p = { .name = "http" };
	uint16_t n = 0;

	assert_int_equal(sim_port_resolve(&p, IPPROTO_TCP, pod(w, "be"), &n), 1);
	assert_int_equal(n, 8080);
	assert_int_equal(sim_port_resolve(&p, IPPROTO_TCP, pod(w, "fe"), &n), 1);
	assert_int_equal(n, 80);
	assert_int_equal(sim_port_resolve(&p, IPPROTO_UDP, pod(w, "be"), &n), 0);
	assert_int_equal(sim_port_resolve(&p, IPPROTO_TCP, pod(w, "v4only"), &n), 0);
	assert_int_equal(sim_port_resolve(&p, IPPROTO_TCP, NULL, &n), 0);
}

static void test_eval_allows_with_both_directions_attributed(void **state)
{
	struct sim_world *w = *state;
	struct vakt_end s, d;
	struct sim_result r;
	char err[SIM_ERR_LEN] = "";

	ends(w, "prod/fe", "prod/be", &s, &d);
	assert_int_equal(sim_eval(w, &s, &d, IPPROTO_TCP, 8080, &r, err, sizeof(err)), 0);
	assert_true(r.allowed);
	assert_true(r.tables[VAKT_DIR_EGRESS].checked && r.tables[VAKT_DIR_EGRESS].allowed);
	assert_true(r.tables[VAKT_DIR_INGRESS].checked && r.tables[VAKT_DIR_INGRESS].allowed);
	assert_int_equal(r.ex.egress.nhits, 1);
	assert_string_equal(r.ex.egress.hits[0].pol->name, "fe-out");
	assert_string_equal(r.ex.ingress.hits[0].pol->name, "be-in");
}

static void test_eval_denies_on_either_direction_alone(void **state)
{
	struct sim_world *w = *state;
	struct vakt_end s, d;
	struct sim_result r;
	char err[SIM_ERR_LEN] = "";

	ends(w, "prod/be", "prod/fe", &s, &d);
	assert_int_equal(sim_eval(w, &s, &d, IPPROTO_TCP, 80, &r, err, sizeof(err)), 0);
	assert_false(r.allowed);
	/* An outside client passes no egress check, but be's ingress still denies it. */
	ends(w, "192.0.2.9", "prod/be", &s, &d);
	assert_int_equal(sim_eval(w, &s, &d, IPPROTO_TCP, 8080, &r, err, sizeof(err)), 0);
	assert_false(r.allowed);
	assert_false(r.tables[VAKT_DIR_EGRESS].checked);
	assert_true(r.ex.egress.allowed);
	assert_false(r.ex.ingress.allowed);
}

static void test_eval_pod_to_itself_is_always_allowed(void **state)
{
	struct sim_world *w = *state;
	struct vakt_end s, d;
	struct sim_result r;
	char err[SIM_ERR_LEN] = "";

	ends(w, "prod/v4only", "prod/v4only", &s, &d);
	assert_int_equal(sim_eval(w, &s, &d, IPPROTO_UDP, 53, &r, err, sizeof(err)), 0);
	assert_true(r.allowed);
	assert_true(r.self);
}

struct keys {
	struct vakt_policy_key k[256];
	size_t n;
};

static int collect_policy_key(void *arg, const void *key, const void *val)
{
	struct keys *ks = arg;

	(void)val;
	if (ks->n < 256)
		memcpy(&ks->k[ks->n++], key, sizeof(ks->k[0]));
	return 0;
}

static void test_eval_reports_tables_that_disagree_with_the_engine(void **state)
{
	struct sim_world *w = *state;
	struct keys *ks = calloc(1, sizeof(*ks));
	struct vakt_end s, d;
	struct sim_result r;
	char err[SIM_ERR_LEN] = "";

	/* Break the compiled tables behind the engine's back: every allow entry gone. */
	assert_non_null(ks);
	assert_int_equal(vakt_tables_foreach(w->tables, VAKT_T_POLICY, collect_policy_key, ks), 0);
	assert_true(ks->n > 0);
	for (size_t i = 0; i < ks->n; i++)
		assert_int_equal(vakt_tables_del(w->tables, VAKT_T_POLICY, &ks->k[i]), 0);
	free(ks);
	ends(w, "prod/fe", "prod/be", &s, &d);
	assert_int_equal(sim_eval(w, &s, &d, IPPROTO_TCP, 8080, &r, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "internal inconsistency on egress of prod/fe"));
	assert_non_null(strstr(err, "compiled tables say denied"));
	assert_non_null(strstr(err, "engine says allowed"));
}

static char *capture_matrix(const char *const *names, size_t n, const unsigned char *cells)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	sim_matrix_print_text(f, names, n, "80", "TCP", cells);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_matrix_text_aligns_columns_on_the_longest_name(void **state)
{
	static const char *const names[] = { "x/a", "x/b", "y/long" };
	static const unsigned char cells[] = { 1, 1, 0, 0, 1, 0, 1, 1, 1 };
	char *out = capture_matrix(names, 3, cells);

	(void)state;
	assert_string_equal(out, "# port 80 TCP\n"
				 "        x/a    x/b    y/long\n"
				 "x/a     .      .      X\n"
				 "x/b     X      .      X\n"
				 "y/long  .      .      .\n");
	free(out);
}

static void test_matrix_text_matches_the_upstream_layout(void **state)
{
	static const char *const names[] = { "x/a", "x/b", "x/c" };
	static const unsigned char cells[] = { 1, 1, 0, 1, 1, 1, 0, 0, 1 };
	char *out = capture_matrix(names, 3, cells);

	(void)state;
	assert_string_equal(out, "# port 80 TCP\n"
				 "     x/a x/b x/c\n"
				 "x/a  .   .   X\n"
				 "x/b  .   .   .\n"
				 "x/c  X   X   .\n");
	free(out);
}

static void test_query_json_has_the_issue_keys(void **state)
{
	struct sim_world *w = *state;
	struct sim_query q = { .port = { .num = 8080 }, .resolved = 8080, .proto = IPPROTO_TCP };
	char err[SIM_ERR_LEN] = "";
	json_t *j, *eg;

	ends(w, "prod/fe", "prod/be", &q.src, &q.dst);
	assert_int_equal(sim_eval(w, &q.src, &q.dst, q.proto, q.resolved, &q.res, err, sizeof(err)), 0);
	j = sim_query_json(w, &q);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "from")), "prod/fe");
	assert_string_equal(json_string_value(json_object_get(j, "to")), "prod/be");
	assert_int_equal(json_integer_value(json_object_get(j, "port")), 8080);
	assert_string_equal(json_string_value(json_object_get(j, "protocol")), "TCP");
	assert_true(json_is_true(json_object_get(j, "allowed")));
	eg = json_object_get(j, "egress");
	assert_true(json_is_true(json_object_get(eg, "isolated")));
	assert_true(json_is_true(json_object_get(eg, "allowed")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(eg, "policies"), 0)), "prod/fe-out");
	assert_non_null(json_object_get(j, "ingress"));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_parse_accepts_numbers_in_range_and_port_names),
		cmocka_unit_test(test_port_parse_rejects_out_of_range_and_invalid_names),
		cmocka_unit_test(test_proto_parse_accepts_any_case_of_tcp_udp_sctp_only),
		cmocka_unit_test_setup_teardown(test_endpoint_parse_names_pods_by_name_or_address, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_parse_rejects_unknown_pods_and_garbage, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_pick_addrs_prefers_ipv4_unless_an_ipv6_address_is_given,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_pick_addrs_fails_without_a_common_family, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_named_port_resolves_against_each_destination, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_eval_allows_with_both_directions_attributed, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_eval_denies_on_either_direction_alone, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_eval_pod_to_itself_is_always_allowed, world_setup,
						world_teardown),
		cmocka_unit_test_setup_teardown(test_eval_reports_tables_that_disagree_with_the_engine, world_setup,
						world_teardown),
		cmocka_unit_test(test_matrix_text_aligns_columns_on_the_longest_name),
		cmocka_unit_test(test_matrix_text_matches_the_upstream_layout),
		cmocka_unit_test_setup_teardown(test_query_json_has_the_issue_keys, world_setup, world_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
